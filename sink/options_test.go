package sink

import (
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pbicopy/pbicopy/internal/spec"
)

func TestParquetOptionsValidate(t *testing.T) {
	for _, o := range []ParquetOptions{
		{}, {Compression: "snappy"}, {Compression: "zstd"}, {Compression: "gzip"}, {Compression: "none"},
		{RowGroupBytes: 1}, {RowGroupBytes: MaxRowGroupBytes}, {RowGroupRows: 1}, {RowGroupRows: 1 << 26},
	} {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	for _, tc := range []struct {
		o    ParquetOptions
		want []string
	}{
		{ParquetOptions{Compression: "lz4"}, []string{`compression: "lz4" is not allowed: use snappy (the default), zstd, gzip or none`}},
		{ParquetOptions{Compression: "Snappy"}, []string{`compression: "Snappy" is not allowed`}},
		{ParquetOptions{RowGroupBytes: -1}, []string{"rowGroupBytes: -1 is out of range: use 0 to 1073741824"}},
		{ParquetOptions{RowGroupRows: -1}, []string{"rowGroupRows: -1 is out of range: use 0 to 67108864"}},
		{ParquetOptions{RowGroupRows: 1 << 27}, []string{"rowGroupRows: 134217728 is out of range: use 0 to 67108864"}},
		{ParquetOptions{Compression: "brotli", RowGroupBytes: MaxRowGroupBytes + 1}, []string{"compression:", "rowGroupBytes:"}},
	} {
		err := tc.o.Validate()
		if err == nil {
			t.Errorf("%+v accepted", tc.o)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: error %q lacks %q", tc.o, err, w)
			}
		}
	}
	if o := (ParquetOptions{}); o.rowGroupBytes() != DefaultRowGroupBytes || o.codec().String() != "SNAPPY" {
		t.Errorf("defaults: %d bytes, codec %v", o.rowGroupBytes(), o.codec())
	}
}

func TestCSVOptionsValidate(t *testing.T) {
	f := false
	for _, o := range []CSVOptions{{}, {LineEnding: "lf"}, {LineEnding: "crlf", Header: &f}} {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	for _, le := range []string{"cr", "LF", "\n"} {
		err := CSVOptions{LineEnding: le}.Validate()
		if err == nil || !strings.Contains(err.Error(), "lineEnding: ") || !strings.Contains(err.Error(), "is not allowed: use lf (the default) or crlf") {
			t.Errorf("lineEnding %q: %v", le, err)
		}
	}
	if o := (CSVOptions{}); o.eol() != "\n" || !o.header() {
		t.Errorf("defaults: eol %q, header %t", o.eol(), o.header())
	}
}

// TestOptionFactsMatchTheCode checks the facts the option tags declare
// against the code that applies them.
func TestOptionFactsMatchTheCode(t *testing.T) {
	if got, want := slices.Sorted(slices.Values(spec.Enum[ParquetOptions]("compression"))), slices.Sorted(maps.Keys(parquetCodecs)); !slices.Equal(got, want) {
		t.Errorf("compression: the tag lists %v, the code knows %v", got, want)
	}
	if d := spec.Default[ParquetOptions]("rowGroupBytes"); d != strconv.FormatInt(DefaultRowGroupBytes, 10) {
		t.Errorf("rowGroupBytes: the tag's default %s is not DefaultRowGroupBytes %d", d, DefaultRowGroupBytes)
	}
	if r := ruleOf[ParquetOptions]("rowGroupBytes"); r.Max == nil || *r.Max != MaxRowGroupBytes {
		t.Errorf("rowGroupBytes: the tag's max is not MaxRowGroupBytes %d", MaxRowGroupBytes)
	}
	if d := spec.Default[ParquetOptions]("rowGroupRows"); d != strconv.FormatInt(DefaultRowGroupRows, 10) {
		t.Errorf("rowGroupRows: the tag's default %s is not DefaultRowGroupRows %d", d, DefaultRowGroupRows)
	}
	if o := (ParquetOptions{}); o.rowGroupRows() != DefaultRowGroupRows {
		t.Errorf("rowGroupRows: the zero value means %d, want DefaultRowGroupRows %d", o.rowGroupRows(), DefaultRowGroupRows)
	}
	if got, want := spec.Enum[PostgresOptions]("mode"), []string{pgAppend, pgReplace, pgMerge, pgReplacePartition}; !slices.Equal(got, want) {
		t.Errorf("mode: the tag lists %v, the code knows %v", got, want)
	}
	if got := spec.Enum[PostgresOptions]("schemaEvolution"); !slices.Equal(got, []string{pgAddColumns}) {
		t.Errorf("schemaEvolution: the tag lists %v", got)
	}
	if d := spec.Default[PostgresOptions]("mode"); d != (PostgresOptions{}).mode() {
		t.Errorf("mode: the tag's default %s is not the code's %s", d, (PostgresOptions{}).mode())
	}
	if d := spec.Default[StorageSpec]("blockSize"); d != strconv.FormatInt(DefaultBlockSize, 10) {
		t.Errorf("blockSize: the tag's default %s is not DefaultBlockSize", d)
	}
	if r := ruleOf[StorageSpec]("blockSize"); r.Max == nil || *r.Max != MaxBlockSize {
		t.Errorf("blockSize: the tag's max is not MaxBlockSize")
	}
	if r := ruleOf[StorageSpec]("concurrency"); r.Max == nil || *r.Max != MaxBlobConcurrency || spec.Default[StorageSpec]("concurrency") != strconv.Itoa(DefaultBlobConcurrency) {
		t.Errorf("concurrency: the tag's range or default is not the code's")
	}
	if d := spec.Default[CSVOptions]("lineEnding"); (CSVOptions{}).eol() != map[string]string{"lf": "\n", "crlf": "\r\n"}[d] {
		t.Errorf("lineEnding: the tag's default %s is not the code's", d)
	}
}

func ruleOf[T any](field string) spec.Rule {
	for _, f := range spec.Fields(reflect.TypeFor[T]()) {
		if spec.Name(f) == field {
			return spec.RuleOf(f)
		}
	}
	panic("no field " + field)
}
