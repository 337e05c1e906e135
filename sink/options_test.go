package sink

import (
	"strings"
	"testing"
)

func TestParquetOptionsValidate(t *testing.T) {
	for _, o := range []ParquetOptions{
		{}, {Compression: "snappy"}, {Compression: "zstd"}, {Compression: "gzip"}, {Compression: "none"},
		{RowGroupBytes: 1}, {RowGroupBytes: MaxRowGroupBytes},
	} {
		if err := o.Validate(); err != nil {
			t.Errorf("%+v: %v", o, err)
		}
	}
	for _, tc := range []struct {
		o    ParquetOptions
		want []string
	}{
		{ParquetOptions{Compression: "lz4"}, []string{`compression: unknown codec "lz4": use snappy (the default), zstd, gzip or none`}},
		{ParquetOptions{Compression: "Snappy"}, []string{`compression: unknown codec "Snappy"`}},
		{ParquetOptions{RowGroupBytes: -1}, []string{"rowGroupBytes: -1 is out of range: use 0 for the default (16777216) or 1 to 1073741824"}},
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
		if err == nil || !strings.Contains(err.Error(), "lineEnding: unknown value") || !strings.Contains(err.Error(), "use lf (the default) or crlf") {
			t.Errorf("lineEnding %q: %v", le, err)
		}
	}
	if o := (CSVOptions{}); o.eol() != "\n" || !o.header() {
		t.Errorf("defaults: eol %q, header %t", o.eol(), o.header())
	}
}
