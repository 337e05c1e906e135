package faults

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	p, err := Parse("writeLast:1:750")
	if err != nil || p.At != LastWrite || p.Index != 1 || p.Rows != 750 {
		t.Fatalf("Parse: %+v, %v", p, err)
	}
	for _, bad := range []string{"", "commit", "later:0", "commit:x", "writeLast:0:many", "commit:0:1:2"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestWrapLeavesOtherSinks(t *testing.T) {
	p := &Plan{Index: 1, At: Open}
	if s, err := p.Wrap(0, nil); s != nil || err != nil {
		t.Errorf("sink 0: %v, %v", s, err)
	}
	if _, err := p.Wrap(1, nil); !errors.Is(err, ErrInjected) {
		t.Errorf("sink 1 opened: %v", err)
	}
}
