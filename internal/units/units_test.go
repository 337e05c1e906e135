package units

import (
	"math"
	"testing"
)

func TestBytes(t *testing.T) {
	for n, want := range map[int64]string{
		0:                  "0 B",
		1:                  "1 B",
		1023:               "1023 B",
		1024:               "1.0 KiB",
		1536:               "1.5 KiB",
		246209:             "240.4 KiB",
		1048575:            "1.0 MiB", // 1023.999 KiB rounds up a unit
		1048576:            "1.0 MiB",
		15_000_000:         "14.3 MiB",
		2 << 30:            "2.0 GiB",
		5 << 40:            "5.0 TiB",
		math.MaxInt64:      "8.0 EiB",
		-2048:              "-2.0 KiB",
		1024*1024 - 52:     "1023.9 KiB",
		1024*1024*1024 - 1: "1.0 GiB",
	} {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%d) = %q, want %q", n, got, want)
		}
	}
}
