package azureblob

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"io/fs"
	"net/url"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/pbicopy/pbicopy/internal/azure"
	"github.com/pbicopy/pbicopy/sink"
)

// Container publishes blobs into one container. It is a Folder whose
// names are blob names; it is safe for concurrent use.
type Container struct {
	client   *container.Client
	location string // service URL and container, without query, ending in /
	opts     sink.BlobOptions
	secrets  []string
	probed   atomic.Bool // a blob was looked up successfully
}

var _ sink.Folder = (*Container)(nil)

// OpenContainer returns a Container for the named container of the
// account. entra is the credential of an account reached with Entra ID
// (acct.Entra set); transport, when not nil, sends the requests. It makes no request: a missing container or a refused credential
// are reported by the first operation.
func OpenContainer(acct sink.BlobAccount, name string, opts sink.BlobOptions, entra azcore.TokenCredential, transport policy.Transporter) (*Container, error) {
	if err := opts.Validate(); err != nil {
		return nil, fmt.Errorf("blob options: %w", err)
	}
	if name == "" {
		return nil, errors.New("open blob container: empty container name")
	}
	c := &Container{opts: opts, secrets: secrets(acct)}
	endpoint, err := acct.Endpoint()
	if err != nil {
		return nil, c.redactErr(fmt.Errorf("open blob container %s: %w", name, err))
	}
	c.location = endpoint + name + "/"
	containerURL := endpoint + url.PathEscape(name)
	copts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry:     retryOptions(opts.EffectiveBlockSize()),
		Telemetry: policy.TelemetryOptions{ApplicationID: "pbicopy"},
		Transport: transport,
	}}
	switch {
	case acct.ConnectionString != "":
		cs, perr := azure.ParseConnectionString(acct.ConnectionString)
		if perr != nil {
			return nil, perr
		}
		if cs.Key != "" {
			cred, kerr := blob.NewSharedKeyCredential(cs.Account, cs.Key)
			if kerr != nil {
				return nil, c.redactErr(fmt.Errorf("connection string: AccountKey: %w", kerr))
			}
			c.client, err = container.NewClientWithSharedKeyCredential(containerURL, cred, copts)
		} else {
			c.client, err = container.NewClientWithNoCredential(containerURL+"?"+strings.TrimPrefix(cs.SAS, "?"), copts)
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
	case acct.Entra != nil:
		if entra == nil {
			return nil, errors.New("open blob container: the account needs an Entra ID credential")
		}
		c.client, err = container.NewClient(containerURL, entra, copts)
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
func (c *Container) Location(name string) string { return c.location + name }

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
// sink.ErrExists. The first Open of a container looks the blob up whatever
// overwrite is, so that a refused credential, a missing permission or a
// missing container fail the run before any row is read.
func (c *Container) Open(ctx context.Context, name string, overwrite bool) (sink.Destination, error) {
	if err := sink.CheckBlobName(name); err != nil {
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
			return nil, fmt.Errorf("open blob %s: %w", c.Location(name), sink.ErrExists)
		case err != nil && !bloberror.HasCode(err, bloberror.BlobNotFound):
			c.probed.Store(false)
			return nil, c.wrap("open blob", name, err)
		}
	}
	id := make([]byte, 12)
	_, _ = rand.Read(id) // never fails
	// The uploads outlive the cancellation of ctx: a commit phase that
	// has started finishes (the last blocks of a part are staged in it),
	// and a run that stops aborts the blob, which ends them.
	uctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	bs := c.opts.EffectiveBlockSize()
	conc := c.opts.EffectiveConcurrency()
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
func (c *Container) Probe(ctx context.Context, name string) (exists bool, err error) {
	if err := sink.CheckBlobName(name); err != nil {
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
func (c *Container) ReadFile(ctx context.Context, name string) ([]byte, error) {
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

// Exists reports whether the named blob exists.
func (c *Container) Exists(ctx context.Context, name string) (bool, error) {
	_, err := c.client.NewBlobClient(name).GetProperties(ctx, nil)
	switch {
	case err == nil:
		return true, nil
	case bloberror.HasCode(err, bloberror.BlobNotFound):
		return false, nil
	}
	return false, c.wrap("look up blob", name, err)
}

// Remove deletes the named blob and its snapshots; a missing blob is not an
// error.
func (c *Container) Remove(ctx context.Context, name string) error {
	_, err := c.client.NewBlobClient(name).Delete(ctx, &blob.DeleteOptions{DeleteSnapshots: to.Ptr(blob.DeleteSnapshotsOptionTypeInclude)})
	if err != nil && !bloberror.HasCode(err, bloberror.BlobNotFound) {
		return c.wrap("delete blob", name, err)
	}
	return nil
}

// Folder returns the view of c whose names are relative to prefix, a blob
// name prefix ending in / (or empty).
func (c *Container) Folder(prefix string) sink.Folder {
	if prefix == "" {
		return c
	}
	return &blobFolder{c: c, prefix: prefix}
}

type blobFolder struct {
	c      *Container
	prefix string
}

func (f *blobFolder) Open(ctx context.Context, name string, overwrite bool) (sink.Destination, error) {
	return f.c.Open(ctx, f.prefix+name, overwrite)
}
func (f *blobFolder) ReadFile(ctx context.Context, name string) ([]byte, error) {
	return f.c.ReadFile(ctx, f.prefix+name)
}
func (f *blobFolder) Exists(ctx context.Context, name string) (bool, error) {
	return f.c.Exists(ctx, f.prefix+name)
}
func (f *blobFolder) Remove(ctx context.Context, name string) error {
	return f.c.Remove(ctx, f.prefix+name)
}
func (f *blobFolder) Location(name string) string { return f.c.Location(f.prefix + name) }
func (f *blobFolder) Probe(ctx context.Context, name string) (bool, error) {
	return f.c.Probe(ctx, f.prefix+name)
}
