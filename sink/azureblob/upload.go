package azureblob

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/pbicopy/pbicopy/sink"
)

// Metadata keys recorded on every blob a Destination publishes. Azure
// metadata names must be C# identifiers, hence the underscores.
const (
	MetaSHA256 = "pbicopy_sha256" // hex SHA-256 of the whole blob
	MetaRows   = "pbicopy_rows"   // rows the blob holds
	MetaJob    = "pbicopy_job"    // job that wrote it
)

// maxBlocks is the service's limit of committed blocks per blob.
const maxBlocks = 50_000

// commitTimeout bounds the commit of the block list once the context of
// the run is done: a publish that has started is not cut short by an
// interruption.
const commitTimeout = 2 * time.Minute

// crc64Table is the CRC-64 (ECMA-182 reversed polynomial) Azure Storage
// uses for x-ms-content-crc64.
var crc64Table = crc64.MakeTable(0x9A6C9329AC4BC9B5)

// contentType is the Content-Type of a published blob, by extension.
func contentType(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".parquet":
		return "application/vnd.apache.parquet"
	case ".csv":
		return "text/csv; charset=utf-8"
	case ".json":
		return "application/json"
	}
	return "application/octet-stream"
}

// blobFile is a Destination uploading one block blob.
type blobFile struct {
	c         *Container
	name      string
	client    *blockblob.Client
	overwrite bool

	ctx    context.Context // bounds the uploads; cancelled by Abort
	cancel context.CancelCauseFunc
	prefix string   // of every block id: random, so concurrent runs never mix blocks
	ids    []string // block ids, in order

	blockSize int
	cur       []byte        // the block being filled
	free      chan []byte   // buffers whose upload is over
	maxBufs   int           // buffers allowed: Concurrency+1
	made      int           // buffers allocated
	sem       chan struct{} // one token per upload in flight
	wg        sync.WaitGroup

	mu      sync.Mutex
	failure error // first upload failure

	sum      hash.Hash
	n        int64
	err      error // sticky failure of Write or finish
	finished bool  // every block is staged
	done     bool  // committed or aborted
}

var _ sink.Destination = (*blobFile)(nil)
var _ sink.Finisher = (*blobFile)(nil)

// errAborted ends the uploads of an aborted blob.
var errAborted = errors.New("aborted")

// Write adds p to the current block, staging every block it fills.
func (f *blobFile) Write(p []byte) (int, error) {
	if f.err != nil {
		return 0, f.err
	}
	if f.done || f.finished {
		return 0, fmt.Errorf("write blob %s: destination already finished, committed or aborted", f.c.Location(f.name))
	}
	if err := f.uploadFailure(); err != nil {
		f.err = err
		return 0, err
	}
	written := 0
	for len(p) > 0 {
		if f.cur == nil {
			buf, err := f.buffer()
			if err != nil {
				f.err = err
				return written, err
			}
			f.cur = buf
		}
		k := min(len(p), f.blockSize-len(f.cur))
		f.cur = append(f.cur, p[:k]...)
		f.sum.Write(p[:k])
		f.n += int64(k)
		written += k
		p = p[k:]
		if len(f.cur) == f.blockSize {
			if err := f.stage(); err != nil {
				f.err = err
				return written, err
			}
		}
	}
	return written, nil
}

// buffer returns an empty buffer for the next block: a free one, a new one
// while fewer than maxBufs exist, or the next one an upload releases.
func (f *blobFile) buffer() ([]byte, error) {
	select {
	case b := <-f.free:
		return b[:0], nil
	default:
	}
	if f.made < f.maxBufs {
		f.made++
		if len(f.ids) == 0 {
			// The first buffer grows as needed: a small file costs little.
			return make([]byte, 0, min(f.blockSize, 64<<10)), nil
		}
		return make([]byte, 0, f.blockSize), nil
	}
	select {
	case b := <-f.free:
		return b[:0], nil
	case <-f.ctx.Done():
		return nil, f.stopped()
	}
}

// stage uploads the current block on a goroutine of its own, once fewer
// than Concurrency uploads are in flight.
func (f *blobFile) stage() error {
	buf := f.cur
	f.cur = nil
	if len(f.ids) == maxBlocks {
		f.free <- buf
		return fmt.Errorf("write blob %s: the blob would exceed %d blocks of %d bytes: raise the block size (storage.blockSize)", f.c.Location(f.name), maxBlocks, f.blockSize)
	}
	select {
	case f.sem <- struct{}{}:
	case <-f.ctx.Done():
		f.free <- buf
		return f.stopped()
	}
	id := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s-%06d", f.prefix, len(f.ids)))
	f.ids = append(f.ids, id)
	n := len(f.ids) - 1
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		err := f.put(n, id, buf)
		f.free <- buf // never blocks: the channel holds every buffer
		<-f.sem
		if err != nil {
			f.fail(err)
		}
	}()
	return nil
}

// put stages one block with its CRC64, and checks the CRC64 the service
// computed if it reports one.
func (f *blobFile) put(n int, id string, buf []byte) error {
	crc := crc64.Checksum(buf, crc64Table)
	resp, err := f.client.StageBlock(f.ctx, id, streaming.NopCloser(bytes.NewReader(buf)), &blockblob.StageBlockOptions{
		TransactionalValidation: blob.TransferValidationTypeCRC64(crc),
	})
	if err != nil {
		if cause := context.Cause(f.ctx); cause != nil {
			return cause // the upload was stopped: the cause is the news
		}
		return f.c.wrap(fmt.Sprintf("upload block %d of blob", n), f.name, err)
	}
	if len(resp.ContentCRC64) == 8 {
		if got := binary.LittleEndian.Uint64(resp.ContentCRC64); got != crc {
			return fmt.Errorf("upload block %d of blob %s: the service computed CRC64 %016x, the data sent has %016x", n, f.c.Location(f.name), got, crc)
		}
	}
	return nil
}

// fail records the first upload failure and stops the other uploads.
func (f *blobFile) fail(err error) {
	f.mu.Lock()
	if f.failure == nil {
		f.failure = err
	}
	f.mu.Unlock()
	f.cancel(err)
}

func (f *blobFile) uploadFailure() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failure
}

// stopped is the error of a destination whose uploads were stopped.
func (f *blobFile) stopped() error {
	if err := f.uploadFailure(); err != nil {
		return err
	}
	return fmt.Errorf("upload blob %s: %w", f.c.Location(f.name), context.Cause(f.ctx))
}

// finish stages the last block and waits for every upload. Cancelling ctx
// stops the uploads.
func (f *blobFile) Finish(ctx context.Context) error {
	if f.err != nil {
		return f.err
	}
	if f.done {
		return fmt.Errorf("commit blob %s: destination already committed or aborted", f.c.Location(f.name))
	}
	if f.finished {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("commit blob %s: %w", f.c.Location(f.name), err)
	}
	stop := context.AfterFunc(ctx, func() { f.cancel(context.Cause(ctx)) })
	defer stop()
	var err error
	if len(f.cur) > 0 {
		err = f.stage()
	}
	f.wg.Wait()
	if ferr := f.uploadFailure(); ferr != nil {
		err = ferr
	}
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("commit blob %s: %w", f.c.Location(f.name), context.Cause(ctx))
	}
	f.release()
	if err != nil {
		f.err = err
		return err
	}
	f.finished = true
	return nil
}

// release drops the buffers.
func (f *blobFile) release() {
	f.cur, f.free = nil, nil
}

// Commit commits the block list with the blob's metadata.
func (f *blobFile) Commit(ctx context.Context, rows int64) (sink.File, error) {
	if f.err != nil {
		// A failed Write or Finish is sticky: nothing is committed.
		_ = f.Abort(ctx)
		return sink.File{}, f.err
	}
	if f.done {
		return sink.File{}, fmt.Errorf("commit blob %s: destination already committed or aborted", f.c.Location(f.name))
	}
	if err := f.Finish(ctx); err != nil {
		_ = f.Abort(ctx)
		return sink.File{}, err
	}
	f.done = true
	defer f.cancel(errAborted) // releases the context; every upload is over
	if err := ctx.Err(); err != nil {
		return sink.File{}, fmt.Errorf("commit blob %s: %w", f.c.Location(f.name), err)
	}
	sum := hex.EncodeToString(f.sum.Sum(nil))
	md := map[string]*string{MetaSHA256: to.Ptr(sum), MetaRows: to.Ptr(strconv.FormatInt(rows, 10))}
	if f.c.opts.Job != "" {
		md[MetaJob] = to.Ptr(f.c.opts.Job)
	}
	if f.c.opts.Metadata != nil {
		for k, v := range f.c.opts.Metadata() {
			// Metadata travels in HTTP headers: ASCII only.
			md["pbicopy_"+k] = to.Ptr(url.PathEscape(v))
		}
	}
	opts := &blockblob.CommitBlockListOptions{
		Metadata:    md,
		HTTPHeaders: &blob.HTTPHeaders{BlobContentType: to.Ptr(contentType(f.name))},
	}
	if !f.overwrite {
		opts.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to.Ptr(azcore.ETagAny)}}
	}
	// The publishing request goes out whatever happens to ctx: a
	// cancellation racing it would leave unknown whether the blob changed.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if _, err := f.client.CommitBlockList(ctx, f.ids, opts); err != nil {
		if f.overwrite || !bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet) {
			return sink.File{}, f.c.wrap("commit blob", f.name, err)
		}
		// A retried commit whose first try succeeded finds the blob it
		// created: that blob is ours if its blocks are.
		if !f.committedByUs(ctx) {
			return sink.File{}, fmt.Errorf("commit blob %s: another writer created it meanwhile: %w", f.c.Location(f.name), sink.ErrExists)
		}
	}
	return sink.File{Location: f.c.Location(f.name), Rows: rows, Bytes: f.n, SHA256: sum}, nil
}

// committedByUs reports whether the committed blob is made of this upload's
// blocks.
func (f *blobFile) committedByUs(ctx context.Context) bool {
	bl, err := f.client.GetBlockList(ctx, blockblob.BlockListTypeCommitted, nil)
	if err != nil || len(bl.CommittedBlocks) != len(f.ids) {
		return false
	}
	for i, b := range bl.CommittedBlocks {
		if b.Name == nil || *b.Name != f.ids[i] {
			return false
		}
	}
	return true
}

// Abort stops the uploads and commits nothing.
func (f *blobFile) Abort(context.Context) error {
	if f.done {
		return nil
	}
	f.done = true
	if f.err == nil {
		f.err = fmt.Errorf("write blob %s: destination already committed or aborted", f.c.Location(f.name))
	}
	f.cancel(errAborted)
	f.wg.Wait()
	f.release()
	return nil
}
