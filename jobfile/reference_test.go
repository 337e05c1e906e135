package jobfile

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

const (
	referenceFile  = "../docs/job-reference.md"
	readmeFile     = "../README.md"
	referenceBegin = "<!-- job-reference -->"
	referenceEnd   = "<!-- /job-reference -->"
)

// TestReferenceUpToDate checks the generated section of
// docs/job-reference.md, between the job-reference markers, against
// Reference; -update rewrites it. The markers must be there, and the README
// must hold no copy of the reference (it links to the page).
func TestReferenceUpToDate(t *testing.T) {
	ref := Reference()
	if ref != Reference() {
		t.Fatal("Reference is not deterministic")
	}
	data, err := os.ReadFile(referenceFile)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	begin := strings.Index(text, referenceBegin+"\n")
	end := strings.Index(text, "\n"+referenceEnd)
	if begin < 0 || end < begin {
		t.Fatalf("%s: the generated reference must stand between %s and %s, each on a line of its own, in that order", referenceFile, referenceBegin, referenceEnd)
	}
	begin += len(referenceBegin) + 1
	end++ // the section keeps the newline that ends its last line
	switch {
	case text[begin:end] == ref:
	case *update:
		if err := os.WriteFile(referenceFile, []byte(text[:begin]+ref+text[end:]), 0o644); err != nil {
			t.Fatal(err)
		}
	default:
		t.Errorf("%s is out of date with the Go types (first difference at line %d of the generated section): run go test ./jobfile -run TestReferenceUpToDate -update, and commit the result",
			referenceFile, firstDiffLine([]byte(text[begin:end]), []byte(ref)))
	}
	readme, err := os.ReadFile(readmeFile)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(readme), referenceBegin) || strings.Contains(string(readme), "## Job file reference") {
		t.Errorf("README.md holds a copy of the job reference: link to docs/job-reference.md instead")
	}
}

// TestReferenceExamples checks that every top-level section has an
// example, and that together they make a job both the loader and the
// schema accept.
func TestReferenceExamples(t *testing.T) {
	var sections []string
	for _, f := range specFields(reflect.TypeFor[Job]()) {
		sections = append(sections, f.name)
		ex, ok := referenceExamples[f.name]
		if !ok {
			t.Errorf("no example for %s: add one to referenceExamples", f.name)
			continue
		}
		if !strings.HasPrefix(ex, f.name+":") || !strings.HasSuffix(ex, "\n") {
			t.Errorf("the example of %s must be the %s: section, ending with a newline:\n%s", f.name, f.name, ex)
		}
	}
	for name := range referenceExamples {
		if !slices.Contains(sections, name) {
			t.Errorf("an example for %s, which is not a field of a job", name)
		}
	}
	for _, job := range [][]byte{referenceJob(), referenceJobWithout("partition")} {
		if _, warnings, err := (Loader{LookupEnv: anyValue}).Load("reference.yaml", job); err != nil || len(warnings) > 0 {
			t.Fatalf("the reference's examples do not make a valid job: %v %v\n%s", err, warnings, job)
		}
		if errs := schemaCheck(t, loadSchema(t), decodeYAML(t, job)); len(errs) > 0 {
			t.Errorf("the schema refuses the reference's examples:\n%s", strings.Join(errs, "\n"))
		}
	}
}

// TestReferenceRows spot-checks that the reference lists nested fields by
// path with their type, default, values and description.
func TestReferenceRows(t *testing.T) {
	ref := Reference()
	for _, want := range []string{
		"| `name` | string | required | a valid job name: lowercase letters",
		"| `sinks[].parquet.compression` | string | `snappy` | `snappy`, `zstd`, `gzip`, `none` | Codec of every column",
		"| `sinks[].parquet.rowGroupBytes` | integer | `16777216` (16 MiB) | 0 to 1073741824 |",
		"| `sinks[].postgres.key` | list of string | — | — |",
		"| `source.powerbi.cloud` | string | `public` | `public`, `usgov`, `china`; a `${NAME}` reference |",
		"| `mapping.columns[].type` | string | required | `string`, `int64`, `float64`, `bool`, `date`, `timestamp`; decimal(P,S)",
		"| `params.<name>.type` | string | required | `date`, `datetime`, `int`, `string` |",
		"| `params` | map of object | — | names of letters, digits and \\_, not starting with a digit |",
		"`source.powerbi.table` needs `source.powerbi.paging`.",
		"listed by a \\_manifest.json",
		"`source` holds exactly one of `powerbi` or `file`.",
		"`sinks[]` holds exactly one of `parquet`, `csv` or `postgres`.",
		"keyvault://&lt;vault&gt;/&lt;secret&gt;",
	} {
		if !strings.Contains(ref, want) {
			t.Errorf("the reference lacks %q", want)
		}
	}
	// Every field has a row.
	var walk func(t reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			switch typ.Kind() {
			case reflect.Slice:
				path += "[]"
			case reflect.Map:
				path += ".<name>"
			}
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct {
			return
		}
		for _, f := range specFields(typ) {
			fp := join(path, f.name)
			if !strings.Contains(ref, "| `"+fp+"` |") {
				t.Errorf("no row for %s", fp)
			}
			walk(f.typ, fp)
		}
	}
	walk(reflect.TypeFor[Job](), "")
}
