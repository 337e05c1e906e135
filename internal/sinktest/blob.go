package sinktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
)

// NewContainer creates a container with a fresh name in the Azurite a and
// returns a client for it; the container is deleted when t ends.
func NewContainer(t testing.TB, a *Azurite) *container.Client {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "t" + hex.EncodeToString(b)
	c, err := container.NewClientFromConnectionString(a.ConnectionString, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Create(context.Background(), nil); err != nil {
		t.Fatalf("create container %s: %v", name, err)
	}
	t.Cleanup(func() { _, _ = c.Delete(context.Background(), nil) })
	return c
}

// ContainerName returns the name of the container c reaches.
func ContainerName(c *container.Client) string {
	u := strings.TrimSuffix(strings.SplitN(c.URL(), "?", 2)[0], "/")
	return u[strings.LastIndexByte(u, '/')+1:]
}

// BlobInfo is what a test checks of a committed blob.
type BlobInfo struct {
	Data        []byte
	Metadata    map[string]string // keys in lower case
	ContentType string
	Blocks      []string // committed block ids
}

// ReadBlob downloads the named blob with its metadata and committed block
// list; ok is false if there is no committed blob of that name.
func ReadBlob(t testing.TB, c *container.Client, name string) (info BlobInfo, ok bool) {
	t.Helper()
	ctx := context.Background()
	resp, err := c.NewBlobClient(name).DownloadStream(ctx, nil)
	if err != nil {
		if strings.Contains(err.Error(), "BlobNotFound") {
			return BlobInfo{}, false
		}
		t.Fatalf("download %s: %v", name, err)
	}
	defer resp.Body.Close()
	if info.Data, err = io.ReadAll(resp.Body); err != nil {
		t.Fatalf("download %s: %v", name, err)
	}
	info.Metadata = map[string]string{}
	for k, v := range resp.Metadata {
		if v != nil {
			info.Metadata[strings.ToLower(k)] = *v
		}
	}
	if resp.ContentType != nil {
		info.ContentType = *resp.ContentType
	}
	bl, err := c.NewBlockBlobClient(name).GetBlockList(ctx, blockblob.BlockListTypeCommitted, nil)
	if err != nil {
		t.Fatalf("block list of %s: %v", name, err)
	}
	for _, b := range bl.CommittedBlocks {
		info.Blocks = append(info.Blocks, *b.Name)
	}
	return info, true
}

// UncommittedBlocks returns the number of blocks staged but not committed
// for the named blob.
func UncommittedBlocks(t testing.TB, c *container.Client, name string) int {
	t.Helper()
	bl, err := c.NewBlockBlobClient(name).GetBlockList(context.Background(), blockblob.BlockListTypeUncommitted, nil)
	if err != nil {
		if strings.Contains(err.Error(), "BlobNotFound") {
			return 0
		}
		t.Fatalf("block list of %s: %v", name, err)
	}
	return len(bl.UncommittedBlocks)
}

// ListBlobs returns the names of the committed blobs of the container.
func ListBlobs(t testing.TB, c *container.Client) []string {
	t.Helper()
	var names []string
	pager := c.NewListBlobsFlatPager(nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list blobs: %v", err)
		}
		for _, b := range page.Segment.BlobItems {
			names = append(names, *b.Name)
		}
	}
	return names
}

// PutBlob uploads data as the named blob, in one request.
func PutBlob(t testing.TB, c *container.Client, name string, data []byte) {
	t.Helper()
	if _, err := c.NewBlockBlobClient(name).UploadBuffer(context.Background(), data, nil); err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
}

// DownloadToFile downloads the named blob into a file of t's temporary
// folder, for the readers that take a path, and returns the path.
func DownloadToFile(t testing.TB, c *container.Client, name string) string {
	t.Helper()
	info, ok := ReadBlob(t, c, name)
	if !ok {
		t.Fatalf("no blob %s", name)
	}
	p := filepath.Join(t.TempDir(), filepath.Base(name))
	if err := os.WriteFile(p, info.Data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
