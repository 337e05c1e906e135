package sinktest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"

	"github.com/apache/arrow-go/v18/arrow"
)

// CSVNull stands for a null (an empty unquoted field) in the rows ReadCSV
// returns, where an empty string (a quoted "") is "".
const CSVNull = "\x00null\x00"

// ReadCSV reads the CSV file at path strictly by RFC 4180, with LF or CRLF
// record ends, and returns its records, the header included, with CSVNull
// for empty unquoted fields. It fails on a byte order mark, on a quote
// inside an unquoted field, on text after a closing quote, on an unclosed
// quote, on a bare CR, on mixed line endings, and on records of unequal
// length. An empty line is a record of one null field.
func ReadCSV(path string) ([][]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	recs, err := ParseCSV(data)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return recs, nil
}

// ParseCSV parses CSV text as ReadCSV does.
func ParseCSV(data []byte) ([][]string, error) {
	if bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		return nil, errors.New("byte order mark")
	}
	var (
		recs [][]string
		rec  []string
		eol  string // the line ending of the file, from its first record
		line = 1
	)
	endRecord := func(end string) error {
		if eol == "" {
			eol = end
		} else if end != eol {
			return fmt.Errorf("line %d: record ends with %q, earlier ones with %q", line, end, eol)
		}
		if len(recs) > 0 && len(rec) != len(recs[0]) {
			return fmt.Errorf("line %d: %d fields, the first record has %d", line, len(rec), len(recs[0]))
		}
		recs = append(recs, rec)
		rec = nil
		line++
		return nil
	}
	i := 0
	for i < len(data) {
		// One field starts at i.
		if data[i] == '"' {
			var b []byte
			j := i + 1
			for {
				k := bytes.IndexByte(data[j:], '"')
				if k < 0 {
					return nil, fmt.Errorf("line %d: unclosed quote", line)
				}
				b = append(b, data[j:j+k]...)
				line += bytes.Count(data[j:j+k], []byte("\n"))
				j += k + 1
				if j < len(data) && data[j] == '"' {
					b = append(b, '"')
					j++
					continue
				}
				break
			}
			rec = append(rec, string(b))
			i = j
		} else {
			j := i
			for j < len(data) && data[j] != ',' && data[j] != '\n' && data[j] != '\r' {
				if data[j] == '"' {
					return nil, fmt.Errorf("line %d: quote in an unquoted field", line)
				}
				j++
			}
			if j == i {
				rec = append(rec, CSVNull)
			} else {
				rec = append(rec, string(data[i:j]))
			}
			i = j
		}
		// A separator, a record end or the end of the text follows.
		switch {
		case i == len(data):
			return nil, fmt.Errorf("line %d: last record without a line ending", line)
		case data[i] == ',':
			i++
			if i == len(data) {
				return nil, fmt.Errorf("line %d: text ends after a comma", line)
			}
		case data[i] == '\n':
			if err := endRecord("\n"); err != nil {
				return nil, err
			}
			i++
		case data[i] == '\r' && i+1 < len(data) && data[i+1] == '\n':
			if err := endRecord("\r\n"); err != nil {
				return nil, err
			}
			i += 2
		case data[i] == '\r':
			return nil, fmt.Errorf("line %d: bare CR", line)
		default:
			return nil, fmt.Errorf("line %d: %q after a closing quote", line, data[i])
		}
	}
	return recs, nil
}

// CSVRows converts the records of a CSV file with a header row, as ReadCSV
// returns them, into rows in the normalised form for schema, parsing each
// field as its column's type: the header must hold the schema's field names.
// Decimals, dates and timestamps stay text, and must already be in the
// normalised form; floats accept NaN, Infinity and -Infinity.
func CSVRows(recs [][]string, schema *arrow.Schema) ([][]any, error) {
	if len(recs) == 0 {
		return nil, errors.New("no header record")
	}
	for i, f := range schema.Fields() {
		if i >= len(recs[0]) || recs[0][i] != f.Name {
			return nil, fmt.Errorf("header %q, want the field names of %s", recs[0], schema)
		}
	}
	if len(recs[0]) != schema.NumFields() {
		return nil, fmt.Errorf("header %q, want the field names of %s", recs[0], schema)
	}
	rows := make([][]any, 0, len(recs)-1)
	for r, rec := range recs[1:] {
		row := make([]any, len(rec))
		for c, s := range rec {
			v, err := csvValue(s, schema.Field(c).Type)
			if err != nil {
				return nil, fmt.Errorf("record %d, column %q: %w", r+1, schema.Field(c).Name, err)
			}
			row[c] = v
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func csvValue(s string, t arrow.DataType) (any, error) {
	if s == CSVNull {
		return nil, nil
	}
	switch t.ID() {
	case arrow.STRING:
		return s, nil
	case arrow.INT64:
		return strconv.ParseInt(s, 10, 64)
	case arrow.FLOAT64:
		switch s {
		case "NaN":
			return math.NaN(), nil
		case "Infinity":
			return math.Inf(1), nil
		case "-Infinity":
			return math.Inf(-1), nil
		}
		return strconv.ParseFloat(s, 64)
	case arrow.BOOL:
		switch s {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, fmt.Errorf("bad bool %q", s)
	case arrow.DECIMAL128, arrow.DATE32, arrow.TIMESTAMP:
		return s, nil
	}
	return nil, fmt.Errorf("unsupported type %s", t)
}
