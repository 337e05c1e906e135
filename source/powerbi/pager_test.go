package powerbi

import (
	"testing"

	"github.com/pbicopy/pbicopy/mapping"
)

func TestKeyLiterals(t *testing.T) {
	for raw, want := range map[string]string{
		`12345`:                     `12345`,
		`"O'Brien ""x"""`:           `"O'Brien ""x"""`,
		`"2024-03-01T00:00:00"`:     `DATETIME(2024, 3, 1, 0, 0, 0)`,
		`"2024-03-01T10:20:30.125"`: `(DATETIME(2024, 3, 1, 10, 20, 30) + 0.125 / 86400)`,
	} {
		got, err := keyLiteral([]byte(raw), mapping.Type{})
		if raw == `"O'Brien ""x"""` {
			got, err = keyLiteral([]byte(`"O'Brien \"x\""`), mapping.Type{Kind: mapping.String})
		}
		if err != nil || got != want {
			t.Errorf("keyLiteral(%s) = %s, %v; want %s", raw, got, err, want)
		}
	}
}
