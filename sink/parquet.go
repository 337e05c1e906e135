package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	pqschema "github.com/apache/arrow-go/v18/parquet/schema"

	"github.com/pbicopy/pbicopy/mapping"
)

// parquetCreatedBy is the created_by field of every file's footer.
const parquetCreatedBy = "pbicopy"

// parquetSink encodes batches as one Parquet file written to a Destination.
type parquetSink struct {
	dst      Destination
	schema   *arrow.Schema               // the schema batches arrive with
	out      *errTrap                    // dst as the encoder sees it
	fw       *file.Writer                // nil until the first rows (or Commit) start the file
	rgw      file.BufferedRowGroupWriter // the row group being buffered; nil before the first rows
	rgRows   int64                       // rows in rgw
	rgMax    int64                       // most rows in a row group
	rgBytes  int64
	cut      bool  // the current row group is full: start a new one before the next rows
	batches  int64 // batches queued into rgw
	progress sync.Mutex
	advanced *sync.Cond // on progress: a column's done has grown
	rows     int64
	enc      []columnEncoder
	queued   sync.WaitGroup           // columns of batches queued or being encoded
	running  sync.WaitGroup           // the columns' goroutines
	failed   atomic.Bool              // a column's encoding failed: see columnEncoder.err
	err      error                    // sticky failure: Commit returns it
	finished bool                     // committed or aborted
	meta     func() map[string]string // Env.Metadata: written in the footer
	mem      *recycler                // the encoder's memory, given back by Commit and Abort
	pageSize int64
	codec    compress.Compression
	pqs      *pqschema.Schema
	kv       metadata.KeyValueMetadata // the footer's metadata from the schema's

	// For tests: serial encodes the columns one at a time in Write;
	// encodeHook, when set, runs before a column of a batch is encoded,
	// and its error is that column's.
	serial     bool
	encodeHook func(col int) error
}

// columnEncoder is the state of one column's encoding, which is done on a
// goroutine of its own (see encode).
type columnEncoder struct {
	nullable bool
	def      []int16          // definition levels of a nullable column, reused
	in       chan columnChunk // the column's share of each batch, in order
	err      error            // the first failure; read after a drain
	// done counts the row group's batches the column has encoded, and
	// sizes[j%len(sizes)] is its encoded size after batch j (see sizeAt).
	done  atomic.Int64
	sizes [2 * sizeLag]atomic.Int64
	// dict buffers a dictionary-encoded string column whose Parquet
	// column keeps a dictionary until the row group is cut; nil for
	// other columns.
	dict *dictColumn
}

// columnChunk is one column of a batch, to be added to a row group, or
// (a nil) the order to finish the column's share of the row group.
type columnChunk struct {
	cw file.ColumnChunkWriter
	a  arrow.Array // released once encoded
}

// columnQueue is how many batches a column's goroutine may have waiting.
const columnQueue = 2

// sizeLag is how many batches behind the last one queued the row group's
// size is read to decide a cut: by then every column has encoded it (a
// column takes a batch only when it has room in its queue), so the
// decision waits for nothing and depends on the data alone.
const sizeLag = columnQueue + 1

var _ Sink = (*parquetSink)(nil)

// NewParquet returns a Sink that encodes batches of schema as a Parquet file
// written to dst. On success the sink owns dst: its Commit and Abort commit
// and abort dst. On error the caller still owns dst and must Abort it.
//
// The schema's fields must be of the Arrow types pbicopy's batches use
// (utf8 or dictionary<signed integer, utf8>, int64, float64, decimal128,
// bool, date32, timestamp[us] without a zone); they are written as Parquet
// STRING (a dictionary-encoded column through dictColumn), INT64, DOUBLE, DECIMAL(P,S) in
// a FIXED_LEN_BYTE_ARRAY of the fewest bytes for P, BOOLEAN, DATE and
// TIMESTAMP(MICROS, isAdjustedToUTC=false) columns, optional where the field
// is nullable. Wall-clock timestamps carry the logical type only, without
// the legacy TIMESTAMP_MICROS converted type that means UTC to older readers.
// The Arrow schema is not stored in the footer.
//
// Batches are buffered into row groups, cut between batches once
// opts.RowGroupBytes of encoded data are buffered; every column chunk has
// statistics; the codec is opts.Compression. Data pages hold up to 1 MiB,
// less when opts.MaxBytesPerFile is small (see NewSplit). The columns of a
// batch are encoded in parallel (the bytes do not depend on it), and the
// file starts with the first batch, which decides the columns encoded
// without a dictionary (see dictionaryPays). Memory for the encoded data
// comes from mem (nil means memory.DefaultAllocator) and is all released by
// Commit or Abort.
func NewParquet(dst Destination, schema *arrow.Schema, opts ParquetOptions, mem memory.Allocator) (Sink, error) {
	pageSize := parquet.DefaultDataPageSize
	if opts.MaxBytesPerFile > 0 && schema != nil {
		// A split output cuts a part once its size reaches MaxBytesPerFile,
		// but the size known includes only completed pages: smaller pages
		// keep a part close to the limit. Limits of 16 MiB per column and
		// more keep the default size.
		pageSize = min(max(opts.MaxBytesPerFile/(16*int64(max(1, schema.NumFields()))), 8<<10), parquet.DefaultDataPageSize)
	}
	s, err := newParquet(dst, schema, opts, mem, pageSize)
	if err != nil {
		return nil, err // not a nil *parquetSink in a non-nil Sink
	}
	return s, nil
}

// newParquet is NewParquet with a data page size, which tests make small.
func newParquet(dst Destination, schema *arrow.Schema, opts ParquetOptions, mem memory.Allocator, pageSize int64) (*parquetSink, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("parquet options: %w", err)
	}
	if err := checkSchema(schema); err != nil {
		return nil, err
	}
	if mem == nil {
		mem = memory.DefaultAllocator
	}
	rec := newRecycler(mem)
	s := &parquetSink{dst: dst, schema: schema, rgBytes: opts.rowGroupBytes(), rgMax: opts.rowGroupRows(), mem: rec, pageSize: pageSize, codec: opts.codec()}
	s.advanced = sync.NewCond(&s.progress)
	fields := schema.Fields()
	for i, f := range fields {
		if f.Type.ID() == arrow.TIMESTAMP {
			fields[i].Type = wallClockMicros
		}
	}
	md := schema.Metadata()
	// The Arrow schema is not stored in the footer (no WithStoreSchema): it
	// would name the private extension type that marks wall-clock columns,
	// and the Parquet types alone read back as the same Arrow types.
	pqs, err := pqarrow.ToParquet(arrow.NewSchema(fields, &md), s.props(nil), pqarrow.NewArrowWriterProperties())
	if err != nil {
		rec.Close()
		return nil, fmt.Errorf("start parquet file: %w", err)
	}
	s.pqs = pqs
	s.kv = make(metadata.KeyValueMetadata, 0, md.Len())
	for i, k := range md.Keys() {
		if err := s.kv.Append(k, md.Values()[i]); err != nil {
			rec.Close()
			return nil, fmt.Errorf("start parquet file: %w", err)
		}
	}
	s.out = &errTrap{w: dst}
	s.enc = make([]columnEncoder, len(fields))
	for i, f := range fields {
		s.enc[i].nullable = f.Nullable
	}
	return s, nil
}

// props are the writer properties of the file: dictionary encoding for
// every column but those noDict names.
func (s *parquetSink) props(noDict []bool) *parquet.WriterProperties {
	p := []parquet.WriterProperty{
		parquet.WithAllocator(s.mem),
		parquet.WithCompression(s.codec),
		parquet.WithStats(true),
		parquet.WithCreatedBy(parquetCreatedBy),
		parquet.WithDataPageSize(s.pageSize),
		parquet.WithDictionaryPageSizeLimit(s.pageSize),
	}
	for i, off := range noDict {
		if off {
			p = append(p, parquet.WithDictionaryPath(parquet.ColumnPath{s.schema.Field(i).Name}, false))
		}
	}
	return parquet.NewWriterProperties(p...)
}

// start starts the file, once the first batch (nil when there is none)
// has told which columns are worth a dictionary (see dictionaryPays).
func (s *parquetSink) start(first arrow.RecordBatch) error {
	noDict := make([]bool, len(s.enc))
	if first != nil {
		for i, c := range first.Columns() {
			noDict[i] = !dictionaryPays(c)
		}
	}
	props := s.props(noDict)
	for i, f := range s.schema.Fields() {
		// Without a codec arrow-go weighs whether the dictionary pays on
		// the first page (see dictColumn.write): such a column is written
		// batch by batch, decoded.
		if f.Type.ID() == arrow.DICTIONARY && !noDict[i] && !props.DictionaryCostFallbackEnabledFor(parquet.ColumnPath{f.Name}.String()) {
			s.enc[i].dict = &dictColumn{}
		}
	}
	fw, err := file.NewParquetWriterWithError(s.out, s.pqs.Root(), file.WithWriterProps(props), file.WithWriteMetadata(s.kv))
	if err == nil {
		err = s.out.err
	}
	if err != nil {
		if fw != nil {
			_ = fw.Close() // releases memory; the error is already known
		}
		return fmt.Errorf("start parquet file: %w", err)
	}
	s.fw = fw
	return nil
}

// dictionaryMinValues is the fewest values of a first batch from which
// dictionaryPays judges a column.
const dictionaryMinValues = 1000

// dictionaryPays tells from a column's first batch whether dictionary
// encoding is worth its cost: not for a column whose values are mostly
// distinct (keys, times to the millisecond, amounts), where the encoder
// would hash every value into a dictionary that fills up and is then
// dropped for plain encoding, in every row group; pqarrow's hashing of
// decimals alone cost a quarter of the encoder's time in profiles. A
// column of at least dictionaryMinValues values more than half of which
// are distinct is written plain; any other keeps the dictionary.
func dictionaryPays(a arrow.Array) bool {
	n := a.Len() - a.NullN()
	if n < dictionaryMinValues {
		return true
	}
	var distinct int
	switch a := a.(type) {
	case *array.Int64:
		distinct = countDistinct(a, a.Value)
	case *array.Timestamp:
		distinct = countDistinct(a, a.Value)
	case *array.Date32:
		distinct = countDistinct(a, a.Value)
	case *array.Float64:
		distinct = countDistinct(a, func(i int) uint64 { return math.Float64bits(a.Value(i)) })
	case *array.Decimal128:
		distinct = countDistinct(a, a.Value)
	case *array.String, *array.Dictionary:
		seen := make(map[string]struct{}, n/2)
		c := stringsOf(a)
		for i := range a.Len() {
			if a.IsValid(i) {
				if v := c.Value(i); !hasKey(seen, v) {
					seen[strings.Clone(v)] = struct{}{}
				}
			}
		}
		distinct = len(seen)
	default: // bool: two values
		return true
	}
	return distinct*2 <= n
}

func hasKey[K comparable](m map[K]struct{}, k K) bool {
	_, ok := m[k]
	return ok
}

// countDistinct counts the distinct values of the valid entries of a.
func countDistinct[K comparable](a arrow.Array, value func(int) K) int {
	seen := make(map[K]struct{}, a.Len()/2)
	for i := range a.Len() {
		if a.IsValid(i) {
			seen[value(i)] = struct{}{}
		}
	}
	return len(seen)
}

// errTrap passes writes to w until one fails, then keeps the error and
// discards the rest, always reporting success to its caller.
//
// It stands between arrow-go's file writer and the destination because the
// writer does not release the memory of a row group whose flush failed:
// with the trap the encoder always runs to the end and frees its buffers,
// and the sink reports the error from err. It also hides any Close method
// of the destination: the writer closes a sink that has one, and the
// destination must stay open until Commit or Abort.
type errTrap struct {
	w   io.Writer
	err error
	n   int64 // bytes passed to w
}

func (t *errTrap) Write(p []byte) (int, error) {
	if t.err == nil {
		if _, err := t.w.Write(p); err != nil {
			t.err = err
		} else {
			t.n += int64(len(p))
		}
	}
	return len(p), nil
}

// Write encodes rec into the current row group, and into new ones as the
// current one fills. It does not keep rec.
func (s *parquetSink) Write(ctx context.Context, rec arrow.RecordBatch) error {
	if err := s.writable(ctx, rec); err != nil {
		return err
	}
	n := rec.NumRows()
	if n == 0 {
		return nil
	}
	if s.fw == nil {
		if err := s.start(rec); err != nil {
			return s.fail(err)
		}
	}
	for off := int64(0); off < n; {
		if s.rgw == nil || s.cut || s.rgRows >= s.rgMax {
			if err := s.finishRowGroup(); err != nil {
				return s.fail(fmt.Errorf("write parquet: %w", err))
			}
			if err := s.drain(); err != nil {
				return s.fail(fmt.Errorf("write parquet: %w", err))
			}
			rgw, err := s.fw.AppendBufferedRowGroupChecked()
			if err == nil {
				err = s.out.err
			}
			if err != nil {
				return s.fail(fmt.Errorf("write parquet: %w", err))
			}
			s.rgw, s.rgRows, s.cut, s.batches = rgw, 0, false, 0
			for i := range s.enc {
				s.enc[i].done.Store(0)
			}
		}
		// A batch that would pass the row limit is sliced (no copy): row
		// groups hold exactly rgMax rows whatever the batch size.
		k := min(n-off, s.rgMax-s.rgRows)
		part := rec
		if k < n {
			part = rec.NewSlice(off, off+k)
		}
		err := s.encode(part)
		if part != rec {
			part.Release()
		}
		if err == nil {
			err = s.out.err
		}
		if err != nil {
			return s.fail(fmt.Errorf("write parquet: %w", err))
		}
		off += k
		s.rows += k
		s.rgRows += k
		s.batches++
		// The cut itself waits for more rows: cutting now would leave an
		// empty row group at the end of the file if these were the last.
		s.cut = s.sizeAt(s.batches-sizeLag) >= s.rgBytes
	}
	return nil
}

// encode queues the columns of rec for the buffered row group. Each column
// is encoded on a goroutine of its own, batch after batch: the columns of a
// buffered row group have their own encoders, pages and statistics, so they
// are independent until the row group is flushed, in column order, and the
// bytes do not depend on the schedule. A column does not wait for the
// others to finish a batch before it starts on the next (a barrier at every
// batch left a core idle while the slowest column finished, and the source
// waiting); the row group is drained before it is cut. An error of a column
// is returned by a later Write or by Commit.
func (s *parquetSink) encode(rec arrow.RecordBatch) error {
	if s.serial {
		ctx := pqarrow.NewArrowWriteContext(context.Background(), nil)
		for i, c := range rec.Columns() {
			cw, err := s.rgw.Column(i)
			if err == nil {
				err = s.encodeColumn(ctx, i, cw, c)
			}
			if err != nil {
				return err
			}
			s.encoded(i, cw)
		}
		return nil
	}
	if s.failed.Load() {
		return s.drain()
	}
	if !s.columnsRunning() {
		s.startColumns()
	}
	for i, c := range rec.Columns() {
		cw, err := s.rgw.Column(i)
		if err != nil {
			return err
		}
		c.Retain()
		s.queued.Add(1)
		s.enc[i].in <- columnChunk{cw: cw, a: c}
	}
	return nil
}

// startColumns starts the goroutine of every column.
func (s *parquetSink) startColumns() {
	for i := range s.enc {
		e := &s.enc[i]
		e.in = make(chan columnChunk, columnQueue)
		s.running.Go(func() {
			// A write context holds scratch space: one per goroutine.
			ctx := pqarrow.NewArrowWriteContext(context.Background(), nil)
			for c := range e.in {
				if e.err == nil {
					if e.err = s.encodeSafely(ctx, i, c.cw, c.a); e.err != nil {
						s.failed.Store(true)
					}
				}
				if c.a != nil {
					s.encoded(i, c.cw)
					c.a.Release()
				}
				s.queued.Done()
			}
		})
	}
}

// finishRowGroup has every column finish its share of the row group on
// its own goroutine, before the row group is cut or the file finished (see
// encodeColumn): the row group's Close, which arrow-go does on one
// goroutine, column after column, is then left with writing out what is
// encoded.
func (s *parquetSink) finishRowGroup() error {
	if s.rgw == nil {
		return nil
	}
	for i := range s.enc {
		e := &s.enc[i]
		cw, err := s.rgw.Column(i)
		if err != nil {
			return err
		}
		if s.serial {
			// The reference the tests compare with: the dict columns are
			// written, the rest is left to arrow-go's Close.
			if e.dict != nil {
				if err := s.encodeColumn(context.Background(), i, cw, nil); err != nil {
					return err
				}
			}
			continue
		}
		if !s.columnsRunning() {
			s.startColumns()
		}
		s.queued.Add(1)
		e.in <- columnChunk{cw: cw}
	}
	return nil
}

// pageFlusher is arrow-go's column writer's FlushCurrentPage, which its
// ColumnChunkWriter interface does not declare.
type pageFlusher interface{ FlushCurrentPage() error }

// flushPage builds the column's current data page, if it holds any value
// (its statistics are reset with each page), as the row group's Close
// would: with a dictionary the page waits, with the others, for the
// dictionary page to be written first. An empty page is never built.
func flushPage(cw file.ColumnChunkWriter) error {
	ps := cw.PageStatistics()
	f, ok := cw.(pageFlusher)
	if ps == nil || !ok || ps.NumValues() == 0 && ps.NullCount() == 0 {
		return nil
	}
	return f.FlushCurrentPage()
}

// pending is the estimated encoded size of what the column holds back
// from the row group until it is cut.
func (e *columnEncoder) pending() int64 {
	if e.dict == nil {
		return 0
	}
	return e.dict.estimate()
}

// encodeSafely is encodeColumn on a column's goroutine, where a panic of
// the encoder would end the process: it becomes the column's error, which
// fails the sink (nothing is published) and the job, with a message.
func (s *parquetSink) encodeSafely(ctx context.Context, i int, cw file.ColumnChunkWriter, a arrow.Array) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parquet encoder failed on column %q: %v", s.schema.Field(i).Name, r)
		}
	}()
	return s.encodeColumn(ctx, i, cw, a)
}

// drain waits until every column queued is encoded, and returns the error
// of the first failing column.
func (s *parquetSink) drain() error {
	s.queued.Wait()
	for i := range s.enc {
		if err := s.enc[i].err; err != nil {
			return err
		}
	}
	return nil
}

// stopColumns drains the columns and ends their goroutines.
func (s *parquetSink) stopColumns() error {
	err := s.drain()
	if s.columnsRunning() {
		for i := range s.enc {
			close(s.enc[i].in)
			s.enc[i].in = nil
		}
		s.running.Wait()
	}
	return err
}

// columnsRunning reports whether the columns' goroutines are started.
func (s *parquetSink) columnsRunning() bool { return len(s.enc) > 0 && s.enc[0].in != nil }

// encoded records that column i has encoded one more batch of the row
// group, and its size after it.
func (s *parquetSink) encoded(i int, cw file.ColumnChunkWriter) {
	e := &s.enc[i]
	j := e.done.Load() + 1
	e.sizes[j%int64(len(e.sizes))].Store(cw.TotalBytesWritten() + e.pending())
	s.progress.Lock()
	e.done.Store(j)
	s.progress.Unlock()
	s.advanced.Broadcast()
}

// sizeAt is the size of the row group's encoded pages after its batch j
// (1-based; 0 before the first), waiting for every column to have
// encoded it. Read as the columns finish, the size would depend on how
// they were scheduled, and so would where row groups are cut and the
// file's bytes.
func (s *parquetSink) sizeAt(j int64) int64 {
	if j < 1 {
		return 0
	}
	var n int64
	for i := range s.enc {
		e := &s.enc[i]
		if e.done.Load() < j {
			s.progress.Lock()
			for e.done.Load() < j {
				s.advanced.Wait()
			}
			s.progress.Unlock()
		}
		n += e.sizes[j%int64(len(e.sizes))].Load()
	}
	return n
}

// pendingBytes is the estimated size of what the dict columns hold back
// from the row group; read after a drain.
func (s *parquetSink) pendingBytes() int64 {
	var n int64
	for i := range s.enc {
		n += s.enc[i].pending()
	}
	return n
}

// encodeColumn adds column i of a batch to the row group: the values as
// they are (a wall-clock timestamp column's storage is int64 microseconds),
// with definition levels for a nullable column. A dictionary-encoded string
// column is added to its dictColumn, or written as plain strings when its
// Parquet column has no dictionary. A nil a finishes the column's share of
// the row group: a dict column is written, and the current page built
// (flushPage).
func (s *parquetSink) encodeColumn(ctx context.Context, i int, cw file.ColumnChunkWriter, a arrow.Array) error {
	e := &s.enc[i]
	if s.encodeHook != nil && (a != nil || e.dict != nil) {
		if err := s.encodeHook(i); err != nil {
			return err
		}
	}
	if a == nil {
		if e.dict != nil {
			if err := e.dict.write(ctx, cw, e.nullable, s.mem, &e.def); err != nil {
				return err
			}
		}
		if s.serial {
			return nil
		}
		return flushPage(cw)
	}
	if d, ok := a.(*array.Dictionary); ok {
		if e.dict != nil {
			e.dict.add(d)
			return nil
		}
		return writeDecoded(ctx, cw, d, e.nullable, s.mem, &e.def)
	}
	return pqarrow.WriteArrowToColumn(ctx, cw, a, levels(a, e.nullable, &e.def), nil, e.nullable)
}

// writable checks that a batch can be written now.
func (s *parquetSink) writable(ctx context.Context, rec arrow.RecordBatch) error {
	if err := checkWrite(ctx, s.finished, s.err, rec, s.schema); err != nil {
		return s.fail(err)
	}
	return nil
}

// fail records the first failure, which every later Write and Commit
// return, so that nothing is published after a failed Write.
func (s *parquetSink) fail(err error) error {
	if s.err == nil {
		s.err = err
	}
	return s.err
}

// Commit writes the last row group and the footer, then commits dst.
func (s *parquetSink) Commit(ctx context.Context) (Result, error) {
	if err := s.err; err != nil {
		return Result{}, errors.Join(err, s.Abort(ctx))
	}
	if s.finished {
		return Result{}, errors.New("commit: sink already committed or aborted")
	}
	if err := ctx.Err(); err != nil {
		return Result{}, errors.Join(err, s.Abort(ctx))
	}
	err := s.finishRowGroup()
	if err == nil {
		err = s.stopColumns()
	} else {
		_ = s.stopColumns()
	}
	if err == nil && s.fw == nil { // no rows: a file of the schema alone
		err = s.start(nil)
	}
	if err == nil && s.meta != nil {
		md := s.meta()
		for _, k := range slices.Sorted(maps.Keys(md)) {
			if err = s.fw.AppendKeyValueMetadata(k, md[k]); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = s.fw.Close()
	}
	s.mem.Close()
	if err == nil {
		err = s.out.err
	}
	if err != nil {
		s.err = fmt.Errorf("finish parquet file: %w", err)
		return Result{}, errors.Join(s.err, s.Abort(ctx))
	}
	s.finished = true
	f, err := s.dst.Commit(ctx, s.rows)
	if err != nil {
		return Result{}, err
	}
	return Result{Kind: "parquet", Location: f.Location, Rows: f.Rows, Bytes: f.Bytes, Files: []File{f}}, nil
}

// encodedBytes is the size of the file so far: what reached dst, and the
// encoded pages of the row group being buffered (the footer is not counted).
func (s *parquetSink) encodedBytes() int64 {
	if s.finished {
		return s.out.n
	}
	if s.rgw == nil {
		return s.out.n
	}
	s.queued.Wait() // the columns' encoders are the row group's to read
	return s.out.n + s.rgw.TotalBytesWritten() + s.pendingBytes()
}

// Abort aborts dst and releases the buffered row group.
func (s *parquetSink) Abort(ctx context.Context) error {
	if s.finished {
		return nil
	}
	s.finished = true
	_ = s.stopColumns() // the error, if any, is why the sink is aborted
	for i := range s.enc {
		if d := s.enc[i].dict; d != nil {
			d.reset()
		}
	}
	// Close releases the encoder's memory; with the trap set, what it
	// flushes is discarded.
	if s.out.err == nil {
		s.out.err = errors.New("aborted")
	}
	if s.rgw != nil {
		// A column that failed has fewer rows than the others, and the
		// row group's Close then returns early without closing (and
		// releasing) its columns: close them here.
		for i := range s.enc {
			if cw, err := s.rgw.Column(i); err == nil {
				_ = cw.Close()
			}
		}
	}
	if s.fw != nil {
		_ = s.fw.Close()
	}
	s.mem.Close()
	return s.dst.Abort(ctx)
}

// wallClockMicros marks a timestamp[us] column without a zone so that pqarrow
// writes it with the TIMESTAMP(MICROS, isAdjustedToUTC=false) logical type
// alone. For such columns pqarrow also sets the legacy TIMESTAMP_MICROS
// converted type (see arrowTimestampToLogical in pqarrow/schema.go, after
// ARROW-5878), which readers that predate logical types take as UTC; for
// an extension type implementing pqarrow.ExtensionCustomParquetType it uses
// the logical type given, whose ToConvertedType is NONE when not adjusted to
// UTC. The extension arrays share the storage arrays' buffers: no copy.
var wallClockMicros = &wallClockType{ExtensionBase: arrow.ExtensionBase{Storage: &arrow.TimestampType{Unit: arrow.Microsecond}}}

type wallClockType struct{ arrow.ExtensionBase }

var _ pqarrow.ExtensionCustomParquetType = (*wallClockType)(nil)

func (*wallClockType) ArrayType() reflect.Type { return reflect.TypeOf(wallClockArray{}) }
func (*wallClockType) ExtensionName() string   { return "pbicopy.wallclock_us" }
func (*wallClockType) Serialize() string       { return "" }

func (t *wallClockType) ExtensionEquals(o arrow.ExtensionType) bool {
	return o.ExtensionName() == t.ExtensionName()
}

func (t *wallClockType) Deserialize(storage arrow.DataType, _ string) (arrow.ExtensionType, error) {
	if !arrow.TypeEqual(storage, t.Storage) {
		return nil, fmt.Errorf("%s: storage type %s, want %s", t.ExtensionName(), storage, t.Storage)
	}
	return t, nil
}

func (*wallClockType) ParquetLogicalType() pqschema.LogicalType {
	return pqschema.NewTimestampLogicalType(false, pqschema.TimeUnitMicros)
}

type wallClockArray struct{ array.ExtensionArrayBase }

// checkSchema reports the first field whose type no sink writes.
func checkSchema(sc *arrow.Schema) error {
	if sc == nil {
		return errors.New("no schema")
	}
	for _, f := range sc.Fields() {
		ok := mapping.IsStringArrow(f.Type)
		switch t := f.Type.(type) {
		case *arrow.StringType, *arrow.Int64Type, *arrow.Float64Type, *arrow.BooleanType, *arrow.Date32Type:
			ok = true
		case *arrow.Decimal128Type:
			ok = t.Precision >= 1 && t.Precision <= 38 && t.Scale >= 0 && t.Scale <= t.Precision
		case *arrow.TimestampType:
			ok = t.Unit == arrow.Microsecond && t.TimeZone == ""
		}
		if !ok {
			return fmt.Errorf("column %q: unsupported Arrow type %s: use utf8 (or dictionary<signed integer, utf8>), int64, float64, decimal128(P,S), bool, date32 or timestamp[us] without a zone", f.Name, f.Type)
		}
	}
	return nil
}

// checkWrite is the common check of a file sink's Write: no earlier
// failure (which it returns again), not finished, ctx alive, and the batch
// of the sink's schema.
func checkWrite(ctx context.Context, finished bool, failed error, rec arrow.RecordBatch, schema *arrow.Schema) error {
	if failed != nil {
		return failed
	}
	if finished {
		return errors.New("write: sink already committed or aborted")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !rec.Schema().Equal(schema) {
		return fmt.Errorf("write: batch schema %s differs from the sink's %s", rec.Schema(), schema)
	}
	return nil
}
