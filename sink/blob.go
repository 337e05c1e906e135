package sink

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
	"io/fs"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// Block sizes and upload concurrency of a blob destination.
//
// A block blob holds at most 50,000 blocks, so the block size caps the
// blob: the SDK's UploadStream default of 1 MiB stops near 48 GiB, 8 MiB
// near 390 GiB. The memory of an upload is BlockSize × (Concurrency + 1):
// 40 MiB with the defaults, which keep four requests of a size that
// amortises per-request latency in flight.
const (
	DefaultBlockSize       int64 = 8 << 20
	MinBlockSize           int64 = 64 << 10
	MaxBlockSize           int64 = 4000 << 20 // the service's limit for one Put Block
	DefaultBlobConcurrency       = 4
	MaxBlobConcurrency           = 64
	maxBlocks                    = 50_000 // committed blocks per blob, the service's limit
)

// Metadata keys recorded on every blob a Destination publishes. Azure
// metadata names must be C# identifiers, hence the underscores.
const (
	MetaSHA256 = "pbicopy_sha256" // hex SHA-256 of the whole blob
	MetaRows   = "pbicopy_rows"   // rows the blob holds
	MetaJob    = "pbicopy_job"    // job that wrote it
)

// crc64Table is the CRC-64 (ECMA-182 reversed polynomial) Azure Storage
// uses for x-ms-content-crc64.
var crc64Table = crc64.MakeTable(0x9A6C9329AC4BC9B5)

// BlobAccount says how to reach a storage account's Blob service. Exactly
// one of ConnectionString, SASToken, AccountKey and Credential is set.
type BlobAccount struct {
	// ServiceURL is the Blob service endpoint, e.g.
	// https://myaccount.blob.core.windows.net/ or, for Azurite,
	// http://127.0.0.1:10000/devstoreaccount1/. It may be empty with a
	// connection string, which names its own.
	ServiceURL string
	// ConnectionString is an Azure Storage connection string with an
	// AccountKey or a SharedAccessSignature, or UseDevelopmentStorage=true
	// (Azurite on its default port).
	ConnectionString string
	// SASToken is a shared access signature (the query string, with or
	// without its leading ?) for the container or the account.
	SASToken string
	// AccountName and AccountKey make a shared key credential.
	AccountName string
	AccountKey  string
	// Credential is an Entra ID credential; its identity needs the Storage
	// Blob Data Contributor role on the container.
	Credential azcore.TokenCredential
}

// Method names the kind of credential a names, for messages: it never
// includes the secret.
func (a BlobAccount) Method() string {
	switch {
	case a.ConnectionString != "":
		return "connection string"
	case a.SASToken != "":
		return "SAS token"
	case a.AccountKey != "":
		return "account key"
	case a.Credential != nil:
		return "Entra ID"
	}
	return "no credential"
}

// Endpoint returns the Blob service URL of a, with a trailing slash and
// without any query, from ServiceURL or else from the connection string.
func (a BlobAccount) Endpoint() (string, error) {
	u := a.ServiceURL
	if u == "" && a.ConnectionString != "" {
		cs, err := parseConnectionString(a.ConnectionString)
		if err != nil {
			return "", err
		}
		u = cs.endpoint
	}
	if u == "" {
		return "", errors.New("no Blob service URL")
	}
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || p.Scheme != "https" && p.Scheme != "http" {
		return "", fmt.Errorf("%q is not a Blob service URL such as https://myaccount.blob.core.windows.net/", redactURL(u))
	}
	p.RawQuery, p.Fragment = "", ""
	if !strings.HasSuffix(p.Path, "/") {
		p.Path += "/"
	}
	return p.String(), nil
}

// connString is what a connection string holds.
type connString struct {
	endpoint string // Blob service URL
	account  string
	key      string
	sas      string
}

// The well-known Azurite development account (published by Microsoft).
const (
	azuriteAccount  = "devstoreaccount1"
	azuriteKey      = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
	azuriteEndpoint = "http://127.0.0.1:10000/devstoreaccount1"
)

// parseConnectionString reads the fields of a connection string that
// concern the Blob service. Its errors never quote the string.
func parseConnectionString(s string) (connString, error) {
	fields := map[string]string{}
	for _, part := range strings.Split(strings.TrimSpace(s), ";") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return connString{}, errors.New("connection string: every part must be Name=value, separated by ;")
		}
		fields[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
	}
	if strings.EqualFold(fields["usedevelopmentstorage"], "true") {
		ep := azuriteEndpoint
		if proxy := fields["developmentstorageproxyuri"]; proxy != "" {
			ep = strings.TrimSuffix(proxy, "/") + ":10000/" + azuriteAccount
		}
		return connString{endpoint: ep, account: azuriteAccount, key: azuriteKey}, nil
	}
	cs := connString{account: fields["accountname"], key: fields["accountkey"], sas: fields["sharedaccesssignature"]}
	switch ep := fields["blobendpoint"]; {
	case ep != "":
		cs.endpoint = ep
	case cs.account != "":
		proto := fields["defaultendpointsprotocol"]
		if proto == "" {
			proto = "https"
		}
		suffix := fields["endpointsuffix"]
		if suffix == "" {
			suffix = "core.windows.net"
		}
		cs.endpoint = proto + "://" + cs.account + ".blob." + suffix
	default:
		return connString{}, errors.New("connection string: it names no account: give AccountName or BlobEndpoint")
	}
	switch {
	case cs.key != "" && cs.account == "":
		return connString{}, errors.New("connection string: AccountKey needs AccountName")
	case cs.key == "" && cs.sas == "":
		return connString{}, errors.New("connection string: it holds no credential: give AccountKey or SharedAccessSignature")
	}
	return cs, nil
}

// secrets lists the strings of a that must never be shown, in the forms
// they may take in a message.
func (a BlobAccount) secrets() []string {
	var out []string
	add := func(s string) {
		if len(s) < 4 {
			return
		}
		out = append(out, s)
		if u, err := url.QueryUnescape(s); err == nil && u != s {
			out = append(out, u)
		}
		if e := url.QueryEscape(s); e != s {
			out = append(out, e)
		}
	}
	addSAS := func(sas string) {
		add(strings.TrimPrefix(sas, "?"))
		if q, err := url.ParseQuery(strings.TrimPrefix(sas, "?")); err == nil {
			add(q.Get("sig"))
		}
	}
	add(a.AccountKey)
	addSAS(a.SASToken)
	if a.ConnectionString != "" {
		add(a.ConnectionString)
		if cs, err := parseConnectionString(a.ConnectionString); err == nil {
			add(cs.key)
			addSAS(cs.sas)
		}
	}
	return out
}

// BlobOptions tunes the uploads of a BlobContainer.
type BlobOptions struct {
	// BlockSize is the size of every staged block but the last; 0 selects
	// DefaultBlockSize.
	BlockSize int64
	// Concurrency is the number of blocks uploaded at once; 0 selects
	// DefaultBlobConcurrency.
	Concurrency int
	// Job is recorded in the metadata of every blob published.
	Job string
	// Transport sends the HTTP requests; nil means azcore's default.
	Transport policy.Transporter
}

// Validate reports block sizes and concurrencies out of range.
func (o BlobOptions) Validate() error {
	var errs []error
	if o.BlockSize != 0 && (o.BlockSize < MinBlockSize || o.BlockSize > MaxBlockSize) {
		errs = append(errs, fmt.Errorf("blockSize: %d is out of range: use 0 for the default (%d, 8 MiB) or %d (64 KiB) to %d (4000 MiB)", o.BlockSize, DefaultBlockSize, MinBlockSize, MaxBlockSize))
	}
	if o.Concurrency < 0 || o.Concurrency > MaxBlobConcurrency {
		errs = append(errs, fmt.Errorf("concurrency: %d is out of range: use 0 for the default (%d) or 1 to %d", o.Concurrency, DefaultBlobConcurrency, MaxBlobConcurrency))
	}
	return errors.Join(errs...)
}

func (o BlobOptions) blockSize() int64 {
	if o.BlockSize == 0 {
		return DefaultBlockSize
	}
	return o.BlockSize
}

func (o BlobOptions) concurrency() int {
	if o.Concurrency == 0 {
		return DefaultBlobConcurrency
	}
	return o.Concurrency
}

// BlobContainer publishes blobs into one container. It is a Folder whose
// names are blob names; it is safe for concurrent use.
type BlobContainer struct {
	client   *container.Client
	location string // service URL and container, without query, ending in /
	opts     BlobOptions
	secrets  []string
	probed   atomic.Bool // a blob was looked up successfully
}

var _ Folder = (*BlobContainer)(nil)

// OpenBlobContainer returns a BlobContainer for the named container of the
// account. It makes no request: a missing container or a refused credential
// are reported by the first operation.
func OpenBlobContainer(acct BlobAccount, name string, opts BlobOptions) (*BlobContainer, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("blob options: %w", err)
	}
	if name == "" {
		return nil, errors.New("open blob container: empty container name")
	}
	c := &BlobContainer{opts: opts, secrets: acct.secrets()}
	endpoint, err := acct.Endpoint()
	if err != nil {
		return nil, c.redactErr(fmt.Errorf("open blob container %s: %w", name, err))
	}
	c.location = endpoint + name + "/"
	containerURL := endpoint + url.PathEscape(name)
	copts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry:     retryOptions(opts.blockSize()),
		Telemetry: policy.TelemetryOptions{ApplicationID: "pbicopy"},
		Transport: opts.Transport,
	}}
	switch {
	case acct.ConnectionString != "":
		cs, perr := parseConnectionString(acct.ConnectionString)
		if perr != nil {
			return nil, perr
		}
		if cs.key != "" {
			cred, kerr := blob.NewSharedKeyCredential(cs.account, cs.key)
			if kerr != nil {
				return nil, c.redactErr(fmt.Errorf("connection string: AccountKey: %w", kerr))
			}
			c.client, err = container.NewClientWithSharedKeyCredential(containerURL, cred, copts)
		} else {
			c.client, err = container.NewClientWithNoCredential(containerURL+"?"+strings.TrimPrefix(cs.sas, "?"), copts)
		}
	case acct.SASToken != "":
		c.client, err = container.NewClientWithNoCredential(containerURL+"?"+strings.TrimPrefix(acct.SASToken, "?"), copts)
	case acct.AccountKey != "":
		if acct.AccountName == "" {
			return nil, errors.New("open blob container: an account key needs the account name")
		}
		cred, kerr := blob.NewSharedKeyCredential(acct.AccountName, acct.AccountKey)
		if kerr != nil {
			return nil, c.redactErr(fmt.Errorf("account key: %w", kerr))
		}
		c.client, err = container.NewClientWithSharedKeyCredential(containerURL, cred, copts)
	case acct.Credential != nil:
		c.client, err = container.NewClient(containerURL, acct.Credential, copts)
	default:
		return nil, errors.New("open blob container: no credential")
	}
	if err != nil {
		return nil, c.redactErr(fmt.Errorf("open blob container %s: %w", c.location, err))
	}
	return c, nil
}

// retryOptions are azcore's retries, set explicitly: more tries than the
// default 3, since a block upload that keeps failing fails the whole run,
// and a per-try timeout that allows a block at 256 KiB/s.
func retryOptions(blockSize int64) policy.RetryOptions {
	return policy.RetryOptions{
		MaxRetries:    6,
		RetryDelay:    time.Second,
		MaxRetryDelay: 30 * time.Second,
		TryTimeout:    max(2*time.Minute, time.Duration(blockSize/(256<<10))*time.Second),
	}
}

// Location returns the URL of the named blob, without any SAS token.
func (c *BlobContainer) Location(name string) string { return c.location + name }

// Open returns a Destination that uploads the named blob as staged blocks
// and publishes it by committing the block list.
//
// Bytes written are gathered into blocks of BlobOptions.BlockSize; each full
// block is staged (Put Block) with its CRC64 for the service to check, with
// up to BlobOptions.Concurrency uploads in flight, from at most
// Concurrency+1 reused buffers: Write blocks while they are all busy, so a
// slow upload slows the encoder instead of filling memory. The SHA-256 and
// the byte count are computed while writing. Commit stages the last block,
// waits for every upload, and commits the block list once, with the
// metadata MetaSHA256, MetaRows and MetaJob and a content type taken from
// the name's extension: that single request is the atomic publish, before
// which the blob (or the previous blob of that name) is all that readers
// see. Abort cancels the uploads and commits nothing; the staged blocks are
// never visible and the service discards them (after a week at most, or at
// the next commit of that blob).
//
// ctx bounds the uploads: once it is done, Write and Commit fail. With
// overwrite false, Open fails if the blob exists, and Commit, which sends
// If-None-Match: *, fails if one appeared meanwhile; both errors wrap
// ErrExists. The first Open of a container looks the blob up whatever
// overwrite is, so that a refused credential, a missing permission or a
// missing container fail the run before any row is read.
func (c *BlobContainer) Open(ctx context.Context, name string, overwrite bool) (Destination, error) {
	if err := CheckBlobName(name); err != nil {
		return nil, fmt.Errorf("open blob %s: %w", c.Location(name), err)
	}
	client := c.client.NewBlockBlobClient(name)
	if !overwrite || !c.probed.Swap(true) {
		// The first blob opened is looked up even when it may be replaced,
		// so that a refused credential or a missing container is reported
		// before any row is read, not after the first block.
		_, err := client.GetProperties(ctx, nil)
		switch {
		case err == nil && !overwrite:
			return nil, fmt.Errorf("open blob %s: %w", c.Location(name), ErrExists)
		case err != nil && !bloberror.HasCode(err, bloberror.BlobNotFound):
			c.probed.Store(false)
			return nil, c.wrap("open blob", name, err)
		}
	}
	id := make([]byte, 12)
	_, _ = rand.Read(id) // never fails
	uctx, cancel := context.WithCancelCause(ctx)
	bs := c.opts.blockSize()
	conc := c.opts.concurrency()
	return &blobFile{
		c:         c,
		name:      name,
		client:    client,
		overwrite: overwrite,
		ctx:       uctx,
		cancel:    cancel,
		prefix:    hex.EncodeToString(id),
		blockSize: int(bs),
		free:      make(chan []byte, conc+1),
		sem:       make(chan struct{}, conc),
		maxBufs:   conc + 1,
		sum:       sha256.New(),
	}, nil
}

// Probe checks, without publishing anything, that the named blob could be
// published: it looks the blob up, which needs read access and tells
// whether it exists, and stages one block for a probe blob beside it,
// which needs write access. The probe blob is never committed: no reader
// sees it, and the service discards it within a week.
func (c *BlobContainer) Probe(ctx context.Context, name string) (exists bool, err error) {
	if err := CheckBlobName(name); err != nil {
		return false, fmt.Errorf("probe blob %s: %w", c.Location(name), err)
	}
	_, err = c.client.NewBlockBlobClient(name).GetProperties(ctx, nil)
	switch {
	case err == nil:
		exists = true
	case !bloberror.HasCode(err, bloberror.BlobNotFound):
		return false, c.wrap("look up blob", name, err)
	}
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	probe := path.Join(path.Dir(name), ".pbicopy-probe-"+hex.EncodeToString(id))
	if path.Dir(name) == "." {
		probe = ".pbicopy-probe-" + hex.EncodeToString(id)
	}
	blockID := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s-%06d", hex.EncodeToString(id), 0))
	data := []byte("pbicopy probe")
	_, err = c.client.NewBlockBlobClient(probe).StageBlock(ctx, blockID, streaming.NopCloser(bytes.NewReader(data)), &blockblob.StageBlockOptions{
		TransactionalValidation: blob.TransferValidationTypeCRC64(crc64.Checksum(data, crc64Table)),
	})
	if err != nil {
		return exists, c.wrap("stage a block for", probe, err)
	}
	return exists, nil
}

// ReadFile returns the content of the named blob, or an error wrapping
// fs.ErrNotExist if there is none. It reads at most 64 MiB.
func (c *BlobContainer) ReadFile(ctx context.Context, name string) ([]byte, error) {
	resp, err := c.client.NewBlobClient(name).DownloadStream(ctx, nil)
	if err != nil {
		if bloberror.HasCode(err, bloberror.BlobNotFound) {
			return nil, fmt.Errorf("read blob %s: %w", c.Location(name), fs.ErrNotExist)
		}
		return nil, c.wrap("read blob", name, err)
	}
	defer resp.Body.Close()
	const limit = 64 << 20
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, c.wrap("read blob", name, err)
	}
	if len(data) > limit {
		return nil, fmt.Errorf("read blob %s: larger than %d bytes", c.Location(name), limit)
	}
	return data, nil
}

// Remove deletes the named blob and its snapshots; a missing blob is not an
// error.
func (c *BlobContainer) Remove(ctx context.Context, name string) error {
	_, err := c.client.NewBlobClient(name).Delete(ctx, &blob.DeleteOptions{DeleteSnapshots: to.Ptr(blob.DeleteSnapshotsOptionTypeInclude)})
	if err != nil && !bloberror.HasCode(err, bloberror.BlobNotFound) {
		return c.wrap("delete blob", name, err)
	}
	return nil
}

// Folder returns the view of c whose names are relative to prefix, a blob
// name prefix ending in / (or empty).
func (c *BlobContainer) Folder(prefix string) Folder {
	if prefix == "" {
		return c
	}
	return &blobFolder{c: c, prefix: prefix}
}

type blobFolder struct {
	c      *BlobContainer
	prefix string
}

func (f *blobFolder) Open(ctx context.Context, name string, overwrite bool) (Destination, error) {
	return f.c.Open(ctx, f.prefix+name, overwrite)
}
func (f *blobFolder) ReadFile(ctx context.Context, name string) ([]byte, error) {
	return f.c.ReadFile(ctx, f.prefix+name)
}
func (f *blobFolder) Remove(ctx context.Context, name string) error {
	return f.c.Remove(ctx, f.prefix+name)
}
func (f *blobFolder) Location(name string) string { return f.c.Location(f.prefix + name) }
func (f *blobFolder) Probe(ctx context.Context, name string) (bool, error) {
	return f.c.Probe(ctx, f.prefix+name)
}

// CheckBlobName refuses a blob name the service would take for another path
// (an empty, . or .. segment, a leading /) or refuse (over 1024 characters).
func CheckBlobName(name string) error {
	switch {
	case name == "":
		return errors.New("empty blob name")
	case len(name) > 1024:
		return fmt.Errorf("the blob name is %d characters long, more than the 1024 allowed", len(name))
	case strings.HasPrefix(name, "/"):
		return errors.New("the blob name starts with /: an absolute name, or an empty segment after the container")
	case strings.ContainsRune(name, '\\'):
		return errors.New(`the blob name holds a \: use / between folders`)
	}
	for _, seg := range strings.Split(name, "/") {
		switch seg {
		case "":
			return errors.New("the blob name has an empty segment (// or a trailing /)")
		case ".", "..":
			return fmt.Errorf("the blob name has a %q segment", seg)
		}
	}
	return nil
}

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
	c         *BlobContainer
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

var _ Destination = (*blobFile)(nil)
var _ finisher = (*blobFile)(nil)

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
func (f *blobFile) finish(ctx context.Context) error {
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
func (f *blobFile) Commit(ctx context.Context, rows int64) (File, error) {
	if f.done {
		return File{}, fmt.Errorf("commit blob %s: destination already committed or aborted", f.c.Location(f.name))
	}
	if err := f.finish(ctx); err != nil {
		_ = f.Abort(ctx)
		return File{}, err
	}
	f.done = true
	defer f.cancel(errAborted) // releases the context; every upload is over
	if err := ctx.Err(); err != nil {
		return File{}, fmt.Errorf("commit blob %s: %w", f.c.Location(f.name), err)
	}
	sum := hex.EncodeToString(f.sum.Sum(nil))
	md := map[string]*string{MetaSHA256: to.Ptr(sum), MetaRows: to.Ptr(strconv.FormatInt(rows, 10))}
	if f.c.opts.Job != "" {
		md[MetaJob] = to.Ptr(f.c.opts.Job)
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
			return File{}, f.c.wrap("commit blob", f.name, err)
		}
		// A retried commit whose first try succeeded finds the blob it
		// created: that blob is ours if its blocks are.
		if !f.committedByUs(ctx) {
			return File{}, fmt.Errorf("commit blob %s: another writer created it meanwhile: %w", f.c.Location(f.name), ErrExists)
		}
	}
	return File{Location: f.c.Location(f.name), Rows: rows, Bytes: f.n, SHA256: sum}, nil
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

// wrap names the operation and the blob in err, turns an Azure error into
// one line with a hint, and removes secrets.
func (c *BlobContainer) wrap(op, name string, err error) error {
	return c.redactErr(fmt.Errorf("%s %s: %w", op, c.Location(name), describeAzure(err)))
}

// redactErr returns err, or an error wrapping it whose text has the
// account's secrets and any SAS signature masked.
func (c *BlobContainer) redactErr(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	red := redactText(msg, c.secrets)
	if red == msg {
		return err
	}
	return &messageError{msg: red, err: err}
}

// redactText masks secrets, and the value of every sig= parameter, in s.
func redactText(s string, secrets []string) string {
	for _, sec := range secrets {
		s = strings.ReplaceAll(s, sec, "[REDACTED]")
	}
	return sigRE.ReplaceAllString(s, "${1}[REDACTED]")
}

// messageError is err with another message: a redacted or shortened one.
type messageError struct {
	msg string
	err error
}

func (e *messageError) Error() string { return e.msg }
func (e *messageError) Unwrap() error { return e.err }

// describeAzure shortens an Azure response error, whose text spans many
// lines and includes the response body, to its status, error code and
// message, with a hint for the usual causes. Other errors are returned as
// they are, but a *url.Error loses its query string (which may hold a SAS
// token).
func describeAzure(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) && !errors.As(err, new(*azcore.ResponseError)) {
		return &messageError{msg: fmt.Sprintf("%s %s: %v", ue.Op, redactURL(ue.URL), ue.Err), err: err}
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return err
	}
	msg := fmt.Sprintf("HTTP %d", re.StatusCode)
	if re.ErrorCode != "" {
		msg += " " + re.ErrorCode
	}
	text := azureMessage(re)
	if text != "" {
		msg += ": " + text
	}
	const (
		authn = " (the credential was refused: a wrong or expired account key or SAS token, one for another account, or a clock far off)"
		authz = " (the credential may not do this here: an Entra ID identity needs the Storage Blob Data Contributor role on the container; a SAS token needs the read, create, write and delete permissions on it)"
	)
	switch code := bloberror.Code(re.ErrorCode); {
	case code == bloberror.ContainerNotFound:
		msg += " (create the container first: pbicopy does not create containers)"
	case re.StatusCode == 403 && text == "":
		// The answer to a HEAD request has no body to tell which.
		msg += " (the credential was refused, or lacks a permission: an Entra ID identity needs the Storage Blob Data Contributor role on the container; a SAS token needs the read, create, write and delete permissions on it)"
	case code == bloberror.AuthenticationFailed, strings.Contains(text, "failed to authenticate"):
		msg += authn
	case code == bloberror.AuthorizationPermissionMismatch, code == bloberror.AuthorizationFailure, code == bloberror.AuthorizationResourceTypeMismatch:
		msg += authz
	}
	return &messageError{msg: msg, err: err}
}

// azureMessage returns the first line of the <Message> of an Azure Storage
// error response, and its request id.
func azureMessage(re *azcore.ResponseError) string {
	if re.RawResponse == nil || re.RawResponse.Body == nil {
		return ""
	}
	body, err := runtime.Payload(re.RawResponse) // read once, and kept by azcore
	if err != nil {
		return ""
	}
	m := messageRE.FindSubmatch(body)
	if m == nil {
		return ""
	}
	first, rest, _ := strings.Cut(strings.TrimSpace(string(m[1])), "\n")
	if id := requestIDRE.FindStringSubmatch(rest); id != nil {
		return strings.TrimSpace(first) + " (RequestId " + id[1] + ")"
	}
	return strings.TrimSpace(first)
}

var (
	sigRE       = regexp.MustCompile(`(?i)(\bsig=)[^&\s"'<>;]+`)
	messageRE   = regexp.MustCompile(`(?s)<Message>(.*?)</Message>`)
	requestIDRE = regexp.MustCompile(`RequestId:(\S+)`)
)

// redactURL drops the query of a URL.
func redactURL(s string) string {
	if u, err := url.Parse(s); err == nil {
		u.RawQuery = ""
		return u.String()
	}
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i]
	}
	return s
}
