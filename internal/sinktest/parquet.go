package sinktest

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/xitongsys/parquet-go-source/local"
	xparquet "github.com/xitongsys/parquet-go/parquet"
	"github.com/xitongsys/parquet-go/reader"
	"github.com/xitongsys/parquet-go/source"
)

// ReadParquetArrow reads the Parquet file at path with arrow-go's pqarrow
// and returns its Arrow schema and its rows in the normalised form. A
// timestamp column must read back as timestamp[us] without a zone. Memory
// comes from mem (nil means memory.DefaultAllocator) and is released before
// it returns.
func ReadParquetArrow(path string, mem memory.Allocator) (*arrow.Schema, [][]any, error) {
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	tbl, err := pqarrow.ReadTable(context.Background(), f, nil, pqarrow.ArrowReadProperties{}, mem)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s with pqarrow: %w", path, err)
	}
	defer tbl.Release()
	rows := make([][]any, tbl.NumRows())
	for r := range rows {
		rows[r] = make([]any, tbl.NumCols())
	}
	for c := 0; c < int(tbl.NumCols()); c++ {
		col := tbl.Column(c)
		r := 0
		for _, chunk := range col.Data().Chunks() {
			for i := 0; i < chunk.Len(); i++ {
				v, err := arrowValue(chunk, i)
				if err != nil {
					return nil, nil, fmt.Errorf("read %s with pqarrow: column %q: %w", path, col.Name(), err)
				}
				rows[r][c] = v
				r++
			}
		}
	}
	return tbl.Schema(), rows, nil
}

// arrowValue is the normalised form of value i of a.
func arrowValue(a arrow.Array, i int) (any, error) {
	if a.IsNull(i) {
		return nil, nil
	}
	switch a := a.(type) {
	case *array.String:
		return a.Value(i), nil
	case *array.Int64:
		return a.Value(i), nil
	case *array.Float64:
		return a.Value(i), nil
	case *array.Boolean:
		return a.Value(i), nil
	case *array.Decimal128:
		t := a.DataType().(*arrow.Decimal128Type)
		return DecimalString(a.Value(i).BigInt(), t.Scale), nil
	case *array.Date32:
		return DateString(int64(a.Value(i))), nil
	case *array.Timestamp:
		t := a.DataType().(*arrow.TimestampType)
		if t.Unit != arrow.Microsecond || t.TimeZone != "" {
			return nil, fmt.Errorf("timestamp read back as %s, want timestamp[us] without a zone", t)
		}
		return TimestampString(int64(a.Value(i))), nil
	}
	return nil, fmt.Errorf("unexpected Arrow type %s", a.DataType())
}

// ReadParquetXitongsys reads the Parquet file at path with
// github.com/xitongsys/parquet-go, an implementation independent of
// arrow-go, and returns its rows in the normalised form. Values are
// interpreted from the footer's physical, logical and converted types as
// xitongsys decodes them, so a file it cannot read or a type it cannot
// recognise is an error.
func ReadParquetXitongsys(path string) ([][]any, error) {
	pf, err := local.NewLocalFileReader(path)
	if err != nil {
		return nil, err
	}
	defer pf.Close()
	footer, err := readXitongsysFooter(pf)
	if err != nil {
		return nil, fmt.Errorf("read %s with xitongsys: %w", path, err)
	}
	leaves := leafElements(footer)
	pr, err := reader.NewParquetColumnReader(pf, 1)
	if err != nil {
		return nil, fmt.Errorf("read %s with xitongsys: %w", path, err)
	}
	defer pr.ReadStop()
	n := pr.GetNumRows()
	rows := make([][]any, n)
	for r := range rows {
		rows[r] = make([]any, len(leaves))
	}
	if n == 0 {
		return rows, nil
	}
	for c, el := range leaves {
		vals, _, dls, err := pr.ReadColumnByIndex(int64(c), n)
		if err != nil {
			return nil, fmt.Errorf("read %s with xitongsys: column %q: %w", path, el.Name, err)
		}
		// ReadColumnByIndex drops page decoding errors: a short column is one.
		if int64(len(vals)) != n || int64(len(dls)) != n {
			return nil, fmt.Errorf("read %s with xitongsys: column %q: %d values for %d rows", path, el.Name, len(vals), n)
		}
		for r, v := range vals {
			if (v == nil) != (dls[r] == 0) {
				return nil, fmt.Errorf("read %s with xitongsys: column %q, row %d: value %v with definition level %d", path, el.Name, r, v, dls[r])
			}
			if v == nil {
				continue
			}
			if rows[r][c], err = xitongsysValue(el, v); err != nil {
				return nil, fmt.Errorf("read %s with xitongsys: column %q, row %d: %w", path, el.Name, r, err)
			}
		}
	}
	return rows, nil
}

// xitongsysValue is the normalised form of v, decoded by xitongsys for a
// column described by el.
func xitongsysValue(el *xparquet.SchemaElement, v any) (any, error) {
	lt := el.LogicalType
	ct := el.ConvertedType
	switch {
	case lt != nil && lt.DECIMAL != nil || ct != nil && *ct == xparquet.ConvertedType_DECIMAL:
		scale := el.GetScale()
		if lt != nil && lt.DECIMAL != nil {
			scale = lt.DECIMAL.Scale
		}
		var unscaled *big.Int
		switch x := v.(type) {
		case string: // FIXED_LEN_BYTE_ARRAY or BYTE_ARRAY: big-endian two's complement
			unscaled = twosComplement([]byte(x))
		case int32:
			unscaled = big.NewInt(int64(x))
		case int64:
			unscaled = big.NewInt(x)
		default:
			return nil, fmt.Errorf("decimal decoded as %T", v)
		}
		return DecimalString(unscaled, scale), nil
	case lt != nil && lt.DATE != nil || ct != nil && *ct == xparquet.ConvertedType_DATE:
		d, ok := v.(int32)
		if !ok {
			return nil, fmt.Errorf("date decoded as %T", v)
		}
		return DateString(int64(d)), nil
	case lt != nil && lt.TIMESTAMP != nil || ct != nil && *ct == xparquet.ConvertedType_TIMESTAMP_MICROS:
		us, ok := v.(int64)
		if !ok {
			return nil, fmt.Errorf("timestamp decoded as %T", v)
		}
		if lt != nil && lt.TIMESTAMP != nil && (lt.TIMESTAMP.Unit == nil || lt.TIMESTAMP.Unit.MICROS == nil) {
			return nil, fmt.Errorf("timestamp unit %v, want MICROS", lt.TIMESTAMP.Unit)
		}
		return TimestampString(us), nil
	case lt != nil && lt.STRING != nil || ct != nil && *ct == xparquet.ConvertedType_UTF8:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("string decoded as %T", v)
		}
		return s, nil
	case lt != nil && lt.INTEGER != nil || ct != nil && *ct == xparquet.ConvertedType_INT_64:
		if lt != nil && lt.INTEGER != nil && (lt.INTEGER.BitWidth != 64 || !lt.INTEGER.IsSigned) {
			return nil, fmt.Errorf("integer type %v, want 64-bit signed", lt.INTEGER)
		}
		if ct != nil && *ct != xparquet.ConvertedType_INT_64 {
			return nil, fmt.Errorf("integer converted type %v, want INT_64", ct)
		}
		x, ok := v.(int64)
		if !ok {
			return nil, fmt.Errorf("int64 decoded as %T", v)
		}
		return x, nil
	case lt == nil && ct == nil:
		switch x := v.(type) {
		case int64, float64, bool:
			return x, nil
		}
	}
	return nil, fmt.Errorf("unexpected value %v (%T) for physical type %v, logical type %v, converted type %v", v, v, el.Type, lt, ct)
}

// twosComplement decodes a big-endian two's complement integer.
func twosComplement(b []byte) *big.Int {
	n := new(big.Int).SetBytes(b)
	if len(b) > 0 && b[0]&0x80 != 0 {
		n.Sub(n, new(big.Int).Lsh(big.NewInt(1), uint(8*len(b))))
	}
	return n
}

// Footer is what a Parquet file's footer says, as stored: it is decoded with
// xitongsys's Thrift code, not arrow-go's, which derives a converted type
// from the logical type on read and so cannot show what was written.
type Footer struct {
	CreatedBy    string
	NumRows      int64
	RowGroupRows []int64 // rows of each row group; its length is the row group count
	Columns      []ColumnFooter
}

// ColumnFooter describes one leaf column of a footer.
type ColumnFooter struct {
	Name      string
	Physical  string   // INT64, FIXED_LEN_BYTE_ARRAY, ...
	TypeLen   int32    // FIXED_LEN_BYTE_ARRAY only
	Logical   string   // STRING, DATE, DECIMAL(38,10), TIMESTAMP(MICROS,isAdjustedToUTC=false); "" if unset
	Converted string   // UTF8, DATE, DECIMAL, TIMESTAMP_MICROS, ...; "" if unset
	Optional  bool     // repetition OPTIONAL (nullable)
	Codecs    []string // codec of each column chunk: SNAPPY, ZSTD, GZIP, UNCOMPRESSED
	// Stats is true when every column chunk has statistics with a null
	// count, and min and max values unless the chunk holds only nulls.
	Stats bool
}

// ReadFooter decodes the footer of the Parquet file at path.
func ReadFooter(path string) (Footer, error) {
	pf, err := local.NewLocalFileReader(path)
	if err != nil {
		return Footer{}, err
	}
	defer pf.Close()
	fm, err := readXitongsysFooter(pf)
	if err != nil {
		return Footer{}, fmt.Errorf("read footer of %s: %w", path, err)
	}
	var ft Footer
	ft.CreatedBy = fm.GetCreatedBy()
	ft.NumRows = fm.GetNumRows()
	for _, rg := range fm.RowGroups {
		ft.RowGroupRows = append(ft.RowGroupRows, rg.GetNumRows())
	}
	for i, el := range leafElements(fm) {
		cf := ColumnFooter{
			Name:     el.GetName(),
			Physical: el.GetType().String(),
			TypeLen:  el.GetTypeLength(),
			Optional: el.GetRepetitionType() == xparquet.FieldRepetitionType_OPTIONAL,
			Stats:    true,
		}
		if el.ConvertedType != nil {
			cf.Converted = el.ConvertedType.String()
		}
		cf.Logical = logicalString(el.LogicalType)
		for _, rg := range fm.RowGroups {
			if i >= len(rg.Columns) || rg.Columns[i].MetaData == nil {
				return Footer{}, fmt.Errorf("read footer of %s: row group without column %d", path, i)
			}
			md := rg.Columns[i].MetaData
			cf.Codecs = append(cf.Codecs, md.GetCodec().String())
			st := md.Statistics
			allNull := st != nil && st.NullCount != nil && *st.NullCount == md.GetNumValues()
			if st == nil || st.NullCount == nil || (!allNull && (st.MinValue == nil || st.MaxValue == nil)) {
				cf.Stats = false
			}
		}
		ft.Columns = append(ft.Columns, cf)
	}
	return ft, nil
}

func logicalString(lt *xparquet.LogicalType) string {
	switch {
	case lt == nil:
		return ""
	case lt.STRING != nil:
		return "STRING"
	case lt.DATE != nil:
		return "DATE"
	case lt.DECIMAL != nil:
		return fmt.Sprintf("DECIMAL(%d,%d)", lt.DECIMAL.Precision, lt.DECIMAL.Scale)
	case lt.TIMESTAMP != nil:
		unit := "?"
		if u := lt.TIMESTAMP.Unit; u != nil {
			switch {
			case u.MILLIS != nil:
				unit = "MILLIS"
			case u.MICROS != nil:
				unit = "MICROS"
			case u.NANOS != nil:
				unit = "NANOS"
			}
		}
		return fmt.Sprintf("TIMESTAMP(%s,isAdjustedToUTC=%t)", unit, lt.TIMESTAMP.IsAdjustedToUTC)
	case lt.INTEGER != nil:
		return fmt.Sprintf("INTEGER(%d,signed=%t)", lt.INTEGER.BitWidth, lt.INTEGER.IsSigned)
	}
	return lt.String()
}

// readXitongsysFooter decodes the footer without the renaming that
// xitongsys's readers apply to it.
func readXitongsysFooter(pf source.ParquetFile) (*xparquet.FileMetaData, error) {
	pr := &reader.ParquetReader{PFile: pf}
	if err := pr.ReadFooter(); err != nil {
		return nil, err
	}
	if pr.Footer == nil || len(pr.Footer.Schema) == 0 {
		return nil, errors.New("footer without a schema")
	}
	return pr.Footer, nil
}

// leafElements returns the leaf columns of a flat schema, in order.
func leafElements(fm *xparquet.FileMetaData) []*xparquet.SchemaElement {
	var leaves []*xparquet.SchemaElement
	for _, el := range fm.Schema[1:] {
		if el.GetNumChildren() == 0 {
			leaves = append(leaves, el)
		}
	}
	return leaves
}
