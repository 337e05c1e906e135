package sink

import (
	"bytes"
	"context"
	"fmt"
	"math/bits"
	"slices"
	"strings"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/bitutil"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/pbicopy/pbicopy/mapping"
)

// dictColumn is a dictionary-encoded string column (the Arrow source's)
// being added to a row group whose Parquet column keeps a dictionary.
//
// Written as plain strings, every value would be hashed into the encoder's
// dictionary (with an allocation each, in arrow-go), after the source had
// copied it out of its own dictionary: the two costs were a quarter of the
// Arrow path's CPU. Instead each batch's indices are mapped, per distinct
// value of the batch's dictionary, to the row group's dictionary (its
// values in order of first appearance, as the encoder would have built
// it), and the column is written when the row group is cut: the dictionary
// first (arrow-go takes a dictionary only before any value), then the
// indices, batch by batch and in the chunks the encoder would have used,
// with the raw sizes and page statistics it would have recorded. The
// column holds 4 bytes a row and the distinct values until then, not the
// batches (whose buffers may be a whole record batch's).
//
// Where row groups are cut by rows, the file is byte for byte the one the
// plain strings give (a test holds it to that). Two exceptions: a row group
// whose dictionary outgrows its page limit is written without one (see
// write); and where the byte limit cuts row groups, this column counts by
// an estimate (estimate) where plain strings count their pages as they are
// flushed, so the cuts may fall at other batches (still decided by the
// data alone).
type dictColumn struct {
	ids    map[string]int32    // the row group's dictionary: value -> index
	values []parquet.ByteArray // by index
	size   int64               // the dictionary's encoded size: 4 bytes + the value, each
	parts  []dictPart          // the row group's batches of the column, in order
	rows   int64

	// The last source dictionary seen and, for each of its values, its
	// index in the row group's dictionary plus one (0: not seen yet). src
	// is not retained (its buffers are not read after add): the reference
	// keeps the object, so that no other dictionary can take its address.
	src   arrow.ArrayData
	remap []int32
}

// dictPart is one batch of a dictColumn: what the column needs of it, so
// that the batch itself (and the source's buffers it points into) is not
// held until the cut.
type dictPart struct {
	ids   []int32 // each row's index in the row group's dictionary (0 for a null)
	valid []byte  // the batch's validity bitmap from bit 0; nil without nulls
	nulls int
}

func (p dictPart) isNull(i int) bool { return p.valid != nil && !bitutil.BitIsSet(p.valid, i) }

// add maps the indices of a, a batch of the column, to the row group's
// dictionary.
func (c *dictColumn) add(a *array.Dictionary) {
	if c.ids == nil {
		c.ids = make(map[string]int32)
	}
	col := stringsOf(a)
	if src := a.Data().Dictionary(); src != c.src {
		c.src = src
		c.remap = make([]int32, col.values.Len())
	}
	n := a.Len()
	ids := make([]int32, n)
	noNulls := a.NullN() == 0
	for i := range n {
		if !noNulls && a.IsNull(i) {
			continue
		}
		k := col.index(i)
		id := c.remap[k]
		if id == 0 {
			v := col.values.Value(k)
			got, ok := c.ids[v]
			if !ok {
				got = int32(len(c.values))
				c.ids[strings.Clone(v)] = got
				c.values = append(c.values, parquet.ByteArray(v))
				c.size += int64(len(v)) + 4
			}
			id = got + 1
			c.remap[k] = id
		}
		ids[i] = id - 1
	}
	p := dictPart{ids: ids, nulls: a.NullN()}
	if p.nulls > 0 {
		p.valid = make([]byte, bitutil.BytesForBits(int64(n)))
		bitutil.CopyBitmap(a.NullBitmapBytes(), a.Data().Offset(), n, p.valid, 0)
	}
	c.parts = append(c.parts, p)
	c.rows += int64(n)
}

// estimate is the encoded size of what the column buffers: its dictionary
// and its indices at the bit width they need (the row group's byte limit
// counts it before it is written).
func (c *dictColumn) estimate() int64 {
	width := int64(bits.Len32(uint32(len(c.values))))
	return c.size + (c.rows*width+7)/8
}

// reset forgets the row group's batches and dictionary.
func (c *dictColumn) reset() {
	*c = dictColumn{}
}

// dictSeeder is what the sink needs of arrow-go's dictionary encoder of a
// string column (parquet/internal/encoding's DictByteArrayEncoder).
type dictSeeder interface {
	PutDictionary(values arrow.Array) error
	AddRawSize(n int64)
	NumEntries() int
}

// write writes the row group's column into cw (see dictColumn) and resets
// c. def is scratch space for definition levels.
func (c *dictColumn) write(ctx context.Context, cw file.ColumnChunkWriter, nullable bool, mem memory.Allocator, def *[]int16) error {
	defer c.reset()
	if len(c.parts) == 0 {
		return nil
	}
	props := cw.Properties()
	path := cw.Descr().Path()
	bw, isBytes := cw.(*file.ByteArrayColumnChunkWriter)
	seeder, isDict := cw.CurrentEncoder().(dictSeeder)
	stats, hasStats := cw.PageStatistics().(*metadata.ByteArrayStatistics)
	if !isBytes || !isDict || !hasStats || c.size >= props.DictionaryPageSizeLimit() || props.DictionaryCostFallbackEnabledFor(path) {
		if c.size >= props.DictionaryPageSizeLimit() {
			// From plain strings arrow-go would switch to plain encoding part
			// of the way through, when the dictionary passes its page limit,
			// and list the two encodings in the footer in a random order
			// (from a map): a file whose bytes change from run to run. The
			// whole column chunk is plain instead.
			cw.FallbackToPlain()
		}
		// Without a codec arrow-go may drop the dictionary if it does not
		// pay: let it decide, from the plain strings.
		for _, p := range c.parts {
			a := c.plain(p, mem)
			err := pqarrow.WriteArrowToColumn(ctx, cw, a, levels(a, nullable, def), nil, nullable)
			a.Release()
			if err != nil {
				return err
			}
		}
		return nil
	}

	dict := c.dictionary(mem)
	defer dict.Release()
	if err := seeder.PutDictionary(dict); err != nil {
		return err
	}
	if seeder.NumEntries() != len(c.values) {
		return fmt.Errorf("parquet dictionary of %d values took %d entries", len(c.values), seeder.NumEntries())
	}
	// The page statistics are the least and greatest value of each chunk:
	// found by the values' ranks in the dictionary (byte order, that of a
	// Parquet string) rather than by comparing the values.
	order := make([]int32, len(c.values))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int { return bytes.Compare(c.values[a], c.values[b]) })
	rank := make([]int32, len(order))
	for r, id := range order {
		rank[id] = int32(r)
	}
	batch := int(props.WriteBatchSize())
	for _, p := range c.parts {
		n := len(p.ids)
		indices := p.indices()
		lv := levels(indices, nullable, def)
		noNulls := p.nulls == 0
		// In the chunks arrow-go's WriteBatch would cut the plain strings
		// into: the encoder's raw size decides where pages end.
		for off := 0; off < n; off += batch {
			end := min(off+batch, n)
			lo, hi, nulls, raw := int32(len(order)), int32(-1), int64(0), int64(0)
			for i := off; i < end; i++ {
				if !noNulls && p.isNull(i) {
					nulls++
					continue
				}
				id := p.ids[i]
				r := rank[id]
				lo, hi = min(lo, r), max(hi, r)
				raw += int64(len(c.values[id])) + 4
			}
			seeder.AddRawSize(raw)
			stats.IncNulls(nulls)
			stats.IncNumValues(int64(end-off) - nulls)
			if hi >= 0 {
				stats.SetMinMax(c.values[order[lo]], c.values[order[hi]])
			}
			chunk := array.NewSlice(indices, int64(off), int64(end))
			var dl []int16
			if lv != nil {
				dl = lv[off:end]
			}
			err := bw.WriteDictIndices(chunk, dl, nil)
			chunk.Release()
			if err != nil {
				indices.Release()
				return err
			}
		}
		indices.Release()
	}
	return nil
}

// dictionary is the row group's dictionary as a string array.
func (c *dictColumn) dictionary(mem memory.Allocator) arrow.Array {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.Reserve(len(c.values))
	b.ReserveData(int(c.size) - 4*len(c.values))
	for _, v := range c.values {
		b.BinaryBuilder.Append(v)
	}
	return b.NewArray()
}

// indices is p's indices into the row group's dictionary as an int32
// array with p's nulls (sharing p's memory).
func (p dictPart) indices() arrow.Array {
	var validity *memory.Buffer
	if p.valid != nil {
		validity = memory.NewBufferBytes(p.valid)
	}
	data := array.NewData(arrow.PrimitiveTypes.Int32, len(p.ids), []*memory.Buffer{validity, memory.NewBufferBytes(arrow.Int32Traits.CastToBytes(p.ids))}, nil, p.nulls, 0)
	defer data.Release()
	return array.MakeFromData(data)
}

// plain is p's values as a string array.
func (c *dictColumn) plain(p dictPart, mem memory.Allocator) arrow.Array {
	b := array.NewStringBuilder(mem)
	defer b.Release()
	b.Reserve(len(p.ids))
	for i, id := range p.ids {
		if p.isNull(i) {
			b.AppendNull()
		} else {
			b.BinaryBuilder.Append(c.values[id])
		}
	}
	return b.NewArray()
}

// levels fills def with the definition levels of a for a nullable column
// (nil otherwise).
func levels(a arrow.Array, nullable bool, def *[]int16) []int16 {
	if !nullable {
		return nil
	}
	n := a.Len()
	if cap(*def) < n {
		*def = make([]int16, n)
	}
	d := (*def)[:n]
	if a.NullN() == 0 {
		for j := range d {
			d[j] = 1
		}
		return d
	}
	for j := range d {
		if a.IsValid(j) {
			d[j] = 1
		} else {
			d[j] = 0
		}
	}
	return d
}

// writeDecoded writes a dictionary-encoded string batch as plain strings.
func writeDecoded(ctx context.Context, cw file.ColumnChunkWriter, a *array.Dictionary, nullable bool, mem memory.Allocator, def *[]int16) error {
	dec, err := mapping.DecodeDictionary(mem, a)
	if err != nil {
		return err
	}
	defer dec.Release()
	return pqarrow.WriteArrowToColumn(ctx, cw, dec, levels(dec, nullable, def), nil, nullable)
}
