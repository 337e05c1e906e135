package spec

import (
	"reflect"
	"strings"
	"testing"
)

type sample struct {
	Name  string            `yaml:"name" required:"a name" pattern:"^[a-z]+$" patternDoc:"a lowercase word" maxLength:"5"`
	Mode  string            `yaml:"mode" enum:"fast,slow" default:"fast"`
	Cloud string            `yaml:"cloud" enum:"@cloud"`
	Type  string            `yaml:"type" enum:"int,text" pattern:"^dec\\([0-9]+\\)$" patternDoc:"dec(N)"`
	N     int64             `yaml:"n" min:"1" max:"9"`
	List  []string          `yaml:"list" minItems:"2"`
	Map   map[string]string `yaml:"map" keys:"^[a-z]+$" keysDoc:"lowercase names"`
	Skip  string            `yaml:"-" required:"never checked"`
}

func TestCheck(t *testing.T) {
	ok := sample{Name: "abc", Mode: "slow", Cloud: "usgov", Type: "dec(3)", N: 5, List: []string{"a", "b"}, Map: map[string]string{"x": ""}}
	if err := Check(ok); err != nil {
		t.Fatalf("a valid value refused: %v", err)
	}
	if err := Check(&sample{Name: "a"}); err != nil {
		t.Errorf("zero values refused: %v", err)
	}
	bad := sample{Name: "Abc", Mode: "warp", Cloud: "mars", Type: "float", N: 10, List: []string{"a"}, Map: map[string]string{"X1": "", "ok": ""}}
	err := Check(bad)
	for _, want := range []string{
		`name: "Abc" is not a lowercase word`,
		`mode: "warp" is not allowed: use fast (the default) or slow`,
		`cloud: "mars" is not allowed: use public, usgov or china`,
		`type: "float" is not allowed: use int, text or dec(N)`,
		`n: 10 is out of range: use 1 to 9`,
		`list: give at least 2`,
		`map: "X1": not valid names: lowercase names`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q: %v", want, err)
		}
	}
	if err := Check(sample{}); err == nil || err.Error() != "name: required: a name" {
		t.Errorf("a missing name: %v", err)
	}
	if err := Check(sample{Name: "abcdef"}); err == nil || !strings.Contains(err.Error(), "longer than 5") {
		t.Errorf("a long name: %v", err)
	}
	if err := CheckExcept(sample{}, "name"); err != nil {
		t.Errorf("CheckExcept checked name: %v", err)
	}
	if err := CheckOnly(bad, "n"); err == nil || strings.Contains(err.Error(), "name") || !strings.Contains(err.Error(), "n: 10") {
		t.Errorf("CheckOnly: %v", err)
	}
}

func TestRules(t *testing.T) {
	if got := Enum[sample]("cloud"); strings.Join(got, ",") != "public,usgov,china" {
		t.Errorf("the @cloud set: %v", got)
	}
	if Default[sample]("mode") != "fast" {
		t.Error("default")
	}
	got := Set("cloud")
	got[0] = "changed"
	if Set("cloud")[0] != "public" {
		t.Error("Set returns the list itself, which callers could change")
	}
	type badTag struct {
		X int `yaml:"x" min:"one"`
	}
	if _, err := ruleOf(reflect.TypeFor[badTag]().Field(0)); err == nil {
		t.Error("a malformed tag was read")
	}
	type badSet struct {
		X string `yaml:"x" enum:"@nope"`
	}
	if _, err := ruleOf(reflect.TypeFor[badSet]().Field(0)); err == nil {
		t.Error("an unknown set was read")
	}
}
