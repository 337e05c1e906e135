package powerbi

import (
	"errors"
	"strings"
	"testing"

	"github.com/pbicopy/pbicopy/mapping"
	"github.com/pbicopy/pbicopy/source"
)

// TestDecodeLabel: the informationProtectionLabel is read wherever it comes
// in the envelope (before or after the results), null means none, a
// malformed one is refused, and with refuseLabel a label fails the response.
func TestDecodeLabel(t *testing.T) {
	rows := `"results":[{"tables":[{"rows":[{"[a]":1},{"[a]":2}]}]}]`
	label := `"informationProtectionLabel":{"id":"87ba5c36","name":"Confidential","extra":1}`
	tests := []struct {
		name, body string
		refuse     bool
		want       *source.Label
		wantErr    string
	}{
		{"first", `{` + label + `,` + rows + `}`, false, &source.Label{ID: "87ba5c36", Name: "Confidential"}, ""},
		{"after the results", `{` + rows + `,` + label + `}`, false, &source.Label{ID: "87ba5c36", Name: "Confidential"}, ""},
		{"null", `{"informationProtectionLabel":null,` + rows + `}`, false, nil, ""},
		{"none", `{` + rows + `}`, false, nil, ""},
		{"id only", `{"informationProtectionLabel":{"id":"x"},` + rows + `}`, false, &source.Label{ID: "x"}, ""},
		{"a name alone", `{"informationProtectionLabel":"Confidential",` + rows + `}`, false, &source.Label{Name: "Confidential"}, ""},
		{"empty object", `{"informationProtectionLabel":{},` + rows + `}`, false, nil, ""},
		{"a number", `{"informationProtectionLabel":3,` + rows + `}`, false, nil, "informationProtectionLabel is not a label with an id and a name: 3"},
		{"a bad object", `{"informationProtectionLabel":{"id":3},` + rows + `}`, false, nil, `informationProtectionLabel is not a label with an id and a name: {"id":3}`},
		{"twice", `{` + label + `,` + label + `,` + rows + `}`, false, &source.Label{ID: "87ba5c36", Name: "Confidential"}, `has the member "informationProtectionLabel" twice`},
		{"refused", `{` + label + `,` + rows + `}`, true, &source.Label{ID: "87ba5c36", Name: "Confidential"}, "the data carries the sensitivity label Confidential (id 87ba5c36) and source.powerbi.sensitivityLabels is refuse"},
		{"refused after the rows", `{` + rows + `,` + label + `}`, true, &source.Label{ID: "87ba5c36", Name: "Confidential"}, "sensitivityLabels is refuse"},
		{"refuse without a label", `{` + rows + `}`, true, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mem := checkedMem(t)
			out := newCollector(t)
			b := NewBuilder(mem, []mapping.Column{{From: "[a]", To: "a", Type: mapping.Type{Kind: mapping.Int64}}}, mapping.UnmappedError, 0, out.emit)
			defer b.Release()
			lim := limitsFor(0)
			lim.refuseLabel = tt.refuse
			st, err := decode(strings.NewReader(tt.body), b, lim)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("decode: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("decode: %v, want %q", err, tt.wantErr)
			}
			var refused *LabelRefusedError
			if tt.refuse && tt.want != nil && !errors.As(err, &refused) {
				t.Fatalf("error %T, want a LabelRefusedError", err)
			}
			if (st.Label == nil) != (tt.want == nil) || st.Label != nil && *st.Label != *tt.want {
				t.Fatalf("label %+v, want %+v", st.Label, tt.want)
			}
		})
	}
}
