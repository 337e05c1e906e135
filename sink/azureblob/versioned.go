package azureblob

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/pbicopy/pbicopy/sink"
)

var (
	_ sink.Versioned = (*Container)(nil)
	_ sink.Versioned = (*blobFolder)(nil)
)

// maxVersionedBytes bounds a file read with its version: a state file.
const maxVersionedBytes = 16 << 20

// ReadVersion returns the content of the named blob and its ETag, or an
// error wrapping fs.ErrNotExist.
func (c *Container) ReadVersion(ctx context.Context, name string) ([]byte, string, error) {
	resp, err := c.client.NewBlobClient(name).DownloadStream(ctx, nil)
	if err != nil {
		if bloberror.HasCode(err, bloberror.BlobNotFound) {
			return nil, "", fmt.Errorf("read blob %s: %w", c.Location(name), fs.ErrNotExist)
		}
		return nil, "", c.wrap("read blob", name, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxVersionedBytes+1))
	if err != nil {
		return nil, "", c.wrap("read blob", name, err)
	}
	if len(data) > maxVersionedBytes {
		return nil, "", fmt.Errorf("read blob %s: larger than %d bytes", c.Location(name), maxVersionedBytes)
	}
	etag := ""
	if resp.ETag != nil {
		etag = string(*resp.ETag)
	}
	return data, etag, nil
}

// WriteIfVersion uploads the named blob in one request (Put Blob) with
// If-Match: version, or If-None-Match: * when version is "": the service
// refuses it (412 or 409) if another writer replaced or created the blob
// since it was read, and the error wraps sink.ErrChanged. A refusal after
// a retry of a request that did succeed is recognised by reading the blob
// back.
func (c *Container) WriteIfVersion(ctx context.Context, name string, data []byte, version string) error {
	if err := sink.CheckBlobName(name); err != nil {
		return fmt.Errorf("write blob %s: %w", c.Location(name), err)
	}
	cond := &blob.ModifiedAccessConditions{IfMatch: to.Ptr(azcore.ETag(version))}
	if version == "" {
		cond = &blob.ModifiedAccessConditions{IfNoneMatch: to.Ptr(azcore.ETagAny)}
	}
	_, err := c.client.NewBlockBlobClient(name).Upload(ctx, streaming.NopCloser(bytes.NewReader(data)), &blockblob.UploadOptions{
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: cond},
		HTTPHeaders:      &blob.HTTPHeaders{BlobContentType: to.Ptr(contentType(name))},
	})
	if err == nil {
		return nil
	}
	if !bloberror.HasCode(err, bloberror.ConditionNotMet, bloberror.BlobAlreadyExists) {
		return c.wrap("write blob", name, err)
	}
	if cur, _, rerr := c.ReadVersion(ctx, name); rerr == nil && bytes.Equal(cur, data) {
		return nil // our own write, retried after its answer was lost
	}
	return fmt.Errorf("write blob %s: %w", c.Location(name), sink.ErrChanged)
}

func (f *blobFolder) ReadVersion(ctx context.Context, name string) ([]byte, string, error) {
	return f.c.ReadVersion(ctx, f.prefix+name)
}

func (f *blobFolder) WriteIfVersion(ctx context.Context, name string, data []byte, version string) error {
	return f.c.WriteIfVersion(ctx, f.prefix+name, data, version)
}
