package azureblob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"github.com/pbicopy/pbicopy/internal/sinktest"
	"github.com/pbicopy/pbicopy/sink"
)

// testBlobs returns a Container over a fresh container of the shared
// Azurite, with small blocks so that small outputs span many of them, and
// a client for checking what it published.
func testBlobs(t *testing.T, opts sink.BlobOptions) (*Container, *container.Client, *sinktest.Azurite) {
	t.Helper()
	az := sinktest.StartAzurite(t)
	cc := sinktest.NewContainer(t, az)
	if opts.BlockSize == 0 {
		opts.BlockSize = sink.MinBlockSize
	}
	if opts.Job == "" {
		opts.Job = "test-job"
	}
	bc, err := OpenContainer(sink.BlobAccount{ConnectionString: az.ConnectionString}, sinktest.ContainerName(cc), opts, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return bc, cc, az
}

// randomBytes returns n bytes that do not compress.
func randomBytes(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// writeInPieces writes data to dst in pieces of varied sizes, some larger
// than a block.
func writeInPieces(t *testing.T, dst sink.Destination, data []byte) {
	t.Helper()
	sizes := []int{1, 7, 1000, 65536, 3, 200_000, 65535, 4096}
	for i, k := 0, 0; i < len(data); k++ {
		n := min(sizes[k%len(sizes)], len(data)-i)
		if w, err := dst.Write(data[i : i+n]); err != nil || w != n {
			t.Fatalf("Write(%d bytes) = %d, %v", n, w, err)
		}
		i += n
	}
}

func TestBlobDestinationIntegration(t *testing.T) {
	bc, cc, _ := testBlobs(t, sink.BlobOptions{Concurrency: 3})
	ctx := context.Background()
	sinktest.PutBlob(t, cc, "dir/out.parquet", []byte("previous"))
	for _, size := range []int{0, 1, int(sink.MinBlockSize) - 1, int(sink.MinBlockSize), 40*int(sink.MinBlockSize) + 123} {
		data := randomBytes(size)
		dst, err := bc.Open(ctx, "dir/out.parquet", true)
		if err != nil {
			t.Fatal(err)
		}
		writeInPieces(t, dst, data)
		f, err := dst.Commit(ctx, 1234)
		if err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		sum := sha256.Sum256(data)
		want := sink.File{Location: bc.Location("dir/out.parquet"), Rows: 1234, Bytes: int64(size), SHA256: hex.EncodeToString(sum[:])}
		if f != want {
			t.Errorf("%d bytes: Commit returned %+v, want %+v", size, f, want)
		}
		if !strings.HasPrefix(f.Location, "http://127.0.0.1:") || !strings.HasSuffix(f.Location, "/devstoreaccount1/"+sinktest.ContainerName(cc)+"/dir/out.parquet") {
			t.Errorf("location %s", f.Location)
		}
		info, ok := sinktest.ReadBlob(t, cc, "dir/out.parquet")
		if !ok {
			t.Fatalf("%d bytes: no blob", size)
		}
		if !bytes.Equal(info.Data, data) {
			t.Errorf("%d bytes: read back %d bytes that differ", size, len(info.Data))
		}
		if info.Metadata[MetaSHA256] != want.SHA256 || info.Metadata[MetaRows] != "1234" || info.Metadata[MetaJob] != "test-job" {
			t.Errorf("%d bytes: metadata %v", size, info.Metadata)
		}
		if info.ContentType != "application/vnd.apache.parquet" {
			t.Errorf("content type %q", info.ContentType)
		}
		if wantBlocks := (size + int(sink.MinBlockSize) - 1) / int(sink.MinBlockSize); len(info.Blocks) != wantBlocks {
			t.Errorf("%d bytes: %d blocks committed, want %d", size, len(info.Blocks), wantBlocks)
		}
		bf := dst.(*blobFile)
		if bf.made > bf.maxBufs || bf.maxBufs != 4 {
			t.Errorf("%d buffers allocated, at most %d allowed", bf.made, bf.maxBufs)
		}
		if err := dst.Abort(ctx); err != nil {
			t.Errorf("Abort after Commit: %v", err)
		}
		if _, err := dst.Write([]byte("x")); err == nil {
			t.Error("Write after Commit succeeded")
		}
		if _, err := dst.Commit(ctx, 1); err == nil {
			t.Error("second Commit succeeded")
		}
	}
}

// TestBlobCRC64Integration checks that the service verifies the CRC64 sent
// with each block, and so that the CRC64 our uploads send is right.
func TestBlobCRC64Integration(t *testing.T) {
	bc, cc, _ := testBlobs(t, sink.BlobOptions{})
	data := randomBytes(1000)
	bb := cc.NewBlockBlobClient("crc")
	_, err := bb.StageBlock(context.Background(), "YmxvY2s=", streaming.NopCloser(bytes.NewReader(data)), &blockblob.StageBlockOptions{
		TransactionalValidation: blob.TransferValidationTypeCRC64(12345),
	})
	if err == nil {
		t.Fatal("a block with a wrong CRC64 was accepted: the service does not check it")
	}
	dst, err := bc.Open(context.Background(), "crc", true)
	if err != nil {
		t.Fatal(err)
	}
	writeInPieces(t, dst, data)
	if _, err := dst.Commit(context.Background(), 0); err != nil {
		t.Fatalf("upload with the computed CRC64: %v", err)
	}
}

func TestBlobOverwriteFalseIntegration(t *testing.T) {
	bc, cc, _ := testBlobs(t, sink.BlobOptions{})
	ctx := context.Background()

	sinktest.PutBlob(t, cc, "exists.csv", []byte("previous"))
	_, err := bc.Open(ctx, "exists.csv", false)
	if !errors.Is(err, sink.ErrExists) || !strings.Contains(err.Error(), bc.Location("exists.csv")) || !strings.Contains(err.Error(), "overwrite") {
		t.Errorf("Open over an existing blob: %v", err)
	}

	// Absent at Open, created by someone else before Commit.
	dst, err := bc.Open(ctx, "race.csv", false)
	if err != nil {
		t.Fatal(err)
	}
	writeInPieces(t, dst, randomBytes(3*int(sink.MinBlockSize)))
	sinktest.PutBlob(t, cc, "race.csv", []byte("theirs"))
	_, err = dst.Commit(ctx, 3)
	t.Logf("commit: %v", err)
	if !errors.Is(err, sink.ErrExists) || !strings.Contains(err.Error(), "another writer") {
		t.Errorf("Commit over a blob created meanwhile: %v", err)
	}
	if info, _ := sinktest.ReadBlob(t, cc, "race.csv"); string(info.Data) != "theirs" {
		t.Errorf("the other writer's blob holds %.20q", info.Data)
	}

	// Absent throughout.
	dst, err = bc.Open(ctx, "new.csv", false)
	if err != nil {
		t.Fatal(err)
	}
	writeInPieces(t, dst, []byte("a,b\n"))
	if _, err := dst.Commit(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if info, _ := sinktest.ReadBlob(t, cc, "new.csv"); string(info.Data) != "a,b\n" || info.ContentType != "text/csv; charset=utf-8" {
		t.Errorf("new blob %q, %q", info.Data, info.ContentType)
	}
}

// TestBlobAbortIntegration aborts uploads midway, and cancels them (the
// context of Open, then Abort; the context of Commit): the previous blob
// keeps its content and its committed block list, and no blob appears
// where there was none.
func TestBlobAbortIntegration(t *testing.T) {
	bc, cc, _ := testBlobs(t, sink.BlobOptions{Concurrency: 2})
	previous := randomBytes(5*int(sink.MinBlockSize) + 17)
	for _, how := range []string{"abort", "cancel", "cancel commit"} {
		t.Run(how, func(t *testing.T) {
			// An existing blob, written by an earlier run of ours.
			dst, err := bc.Open(context.Background(), "old", true)
			if err != nil {
				t.Fatal(err)
			}
			writeInPieces(t, dst, previous)
			if _, err := dst.Commit(context.Background(), 5); err != nil {
				t.Fatal(err)
			}
			before, _ := sinktest.ReadBlob(t, cc, "old")

			for _, name := range []string{"old", "new-" + strings.ReplaceAll(how, " ", "-")} {
				ctx, cancel := context.WithCancel(context.Background())
				dst, err := bc.Open(ctx, name, true)
				if err != nil {
					t.Fatal(err)
				}
				writeInPieces(t, dst, randomBytes(20*int(sink.MinBlockSize)))
				// Some blocks reached the service: the upload is midway.
				deadline := time.Now().Add(10 * time.Second)
				for sinktest.UncommittedBlocks(t, cc, name) == 0 && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if sinktest.UncommittedBlocks(t, cc, name) == 0 {
					t.Fatal("no block was staged")
				}
				switch how {
				case "abort":
					if err := dst.Abort(context.Background()); err != nil {
						t.Fatal(err)
					}
					if _, err := dst.Commit(context.Background(), 1); err == nil {
						t.Error("Commit after Abort succeeded")
					}
				case "cancel":
					// The run is interrupted while it writes: the uploads
					// outlive the context of Open (a commit phase that
					// started would finish), and the run aborts.
					cancel()
					if _, err := dst.Write(randomBytes(2 * int(sink.MinBlockSize))); err != nil {
						t.Errorf("Write after the cancellation of Open's context: %v", err)
					}
				case "cancel commit":
					cctx, ccancel := context.WithCancel(context.Background())
					ccancel()
					if _, err := dst.Commit(cctx, 1); !errors.Is(err, context.Canceled) {
						t.Errorf("Commit with a canceled context: %v", err)
					}
				}
				cancel()
				if err := dst.Abort(context.Background()); err != nil {
					t.Errorf("Abort after the failure: %v", err)
				}
			}
			after, ok := sinktest.ReadBlob(t, cc, "old")
			if !ok || !bytes.Equal(after.Data, previous) || strings.Join(after.Blocks, ",") != strings.Join(before.Blocks, ",") || after.Metadata[MetaRows] != "5" {
				t.Errorf("the previous blob changed: %d bytes, %d blocks (%d before), metadata %v", len(after.Data), len(after.Blocks), len(before.Blocks), after.Metadata)
			}
			for _, n := range sinktest.ListBlobs(t, cc) {
				if strings.HasPrefix(n, "new-") {
					t.Errorf("blob %s appeared", n)
				}
			}
		})
	}
}

// TestBlobUploadFailureIntegration deletes the container during an upload:
// the failure reaches Write or Commit, with a hint, and nothing is
// published.
func TestBlobUploadFailureIntegration(t *testing.T) {
	bc, cc, _ := testBlobs(t, sink.BlobOptions{})
	ctx := context.Background()
	dst, err := bc.Open(ctx, "x.parquet", true)
	if err != nil {
		t.Fatal(err)
	}
	writeInPieces(t, dst, randomBytes(2*int(sink.MinBlockSize)))
	if _, err := cc.Delete(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var werr error
	for i := 0; i < 50 && werr == nil; i++ {
		_, werr = dst.Write(randomBytes(int(sink.MinBlockSize)))
	}
	if werr != nil {
		// A failed Write is sticky.
		if _, err := dst.Write([]byte("more")); !errors.Is(err, werr) {
			t.Errorf("Write after a failed one: %v, want %v", err, werr)
		}
	}
	_, cerr := dst.Commit(ctx, 1)
	if cerr == nil {
		t.Fatal("Commit into a deleted container succeeded")
	}
	if werr != nil && !errors.Is(cerr, werr) {
		t.Errorf("Commit after a failed Write: %v, want %v", cerr, werr)
	}
	if _, err := dst.Commit(ctx, 1); err == nil {
		t.Error("a second Commit succeeded")
	}
	t.Logf("error: %v (Write: %v)", cerr, werr)
	if !strings.Contains(cerr.Error(), "ContainerNotFound") || !strings.Contains(cerr.Error(), "create the container") || strings.Contains(cerr.Error(), "\n") {
		t.Errorf("error: %v", cerr)
	}
}

// TestBlobCredentialsIntegration publishes with a SAS token and an account
// key, and checks that refused ones are reported without their secrets.
func TestBlobCredentialsIntegration(t *testing.T) {
	az := sinktest.StartAzurite(t)
	cc := sinktest.NewContainer(t, az)
	name := sinktest.ContainerName(cc)
	cred, err := blob.NewSharedKeyCredential(sinktest.AzuriteAccount, sinktest.AzuriteKey)
	if err != nil {
		t.Fatal(err)
	}
	qp, err := sas.BlobSignatureValues{
		Protocol: sas.ProtocolHTTPSandHTTP, ExpiryTime: time.Now().Add(time.Hour), ContainerName: name,
		Permissions: (&sas.ContainerPermissions{Read: true, Create: true, Write: true, Delete: true}).String(),
	}.SignWithSharedKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	token := qp.Encode()
	sig := qp.Signature()
	badSig := "AAAA" + sig[4:]
	badToken := strings.Replace(token, "sig="+urlEscape(sig), "sig="+urlEscape(badSig), 1)
	if badToken == token {
		t.Fatal("could not tamper with the SAS token")
	}
	badKey := "S0VZS0VZS0VZS0VZS0VZS0VZS0VZS0VZS0VZS0VZS0VZS0VZS0VZS0VZS0VZS0VZS0VZS0VZS0VZS0VZS0VZ"
	for _, c := range []struct {
		name    string
		acct    sink.BlobAccount
		ok      bool
		secrets []string
	}{
		{"sas", sink.BlobAccount{ServiceURL: az.Endpoint, SASToken: "?" + token}, true, []string{sig}},
		{"account key", sink.BlobAccount{ServiceURL: az.Endpoint, AccountName: sinktest.AzuriteAccount, AccountKey: sinktest.AzuriteKey}, true, nil},
		{"bad sas", sink.BlobAccount{ServiceURL: az.Endpoint, SASToken: badToken}, false, []string{badSig, urlEscape(badSig), sig}},
		{"bad key", sink.BlobAccount{ServiceURL: az.Endpoint, AccountName: sinktest.AzuriteAccount, AccountKey: badKey}, false, []string{badKey}},
		{"bad key in connection string", sink.BlobAccount{ConnectionString: strings.Replace(az.ConnectionString, sinktest.AzuriteKey, badKey, 1)}, false, []string{badKey}},
	} {
		t.Run(c.name, func(t *testing.T) {
			bc, err := OpenContainer(c.acct, name, sink.BlobOptions{BlockSize: sink.MinBlockSize}, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			blobName := strings.ReplaceAll(c.name, " ", "-") + ".csv"
			var errs []error
			if _, err := bc.Open(context.Background(), blobName, false); err != nil {
				errs = append(errs, err)
			}
			dst, err := bc.Open(context.Background(), blobName, true)
			if err == nil {
				writeInPieces(t, dst, randomBytes(3*int(sink.MinBlockSize)))
				_, err = dst.Commit(context.Background(), 3)
			}
			if err != nil {
				errs = append(errs, err)
			}
			if c.ok {
				if len(errs) > 0 {
					t.Fatal(errs)
				}
				if info, ok := sinktest.ReadBlob(t, cc, blobName); !ok || len(info.Data) != 3*int(sink.MinBlockSize) {
					t.Error("nothing published")
				}
				return
			}
			if len(errs) != 2 {
				t.Fatalf("errors %v, want the Open and the upload refused", errs)
			}
			for _, err := range errs {
				t.Logf("refused: %v", err)
				if !strings.Contains(err.Error(), "HTTP 403") {
					t.Errorf("error: %v", err)
				}
				for _, s := range c.secrets {
					if strings.Contains(err.Error(), s) {
						t.Errorf("the error shows a secret: %v", err)
					}
				}
			}
		})
	}
}

func urlEscape(s string) string { return url.QueryEscape(s) }

// TestBlobRedaction checks that the secrets of an account, in any of their
// encodings, and any SAS signature, are masked in errors.
func TestBlobRedaction(t *testing.T) {
	const key = "a2V5LWZvci10ZXN0cw+/a2V5=="
	const sig = "c2lnbmF0dXJl+/sig="
	acct := sink.BlobAccount{
		SASToken:         "?sv=2024-01-01&sp=rcw&sig=" + url.QueryEscape(sig),
		AccountKey:       key,
		ConnectionString: "AccountName=acct;AccountKey=" + key,
	}
	c := &Container{secrets: secrets(acct)}
	for _, text := range []string{
		"PUT https://acct.blob.core.windows.net/c/b?comp=block&sig=" + url.QueryEscape(sig) + ": dial tcp: refused",
		"the signature " + sig + " did not match",
		"key " + key + " and " + url.QueryEscape(key),
		"another SAS: https://x/y?sv=1&sig=OTHERSIGNATURE&se=2",
	} {
		err := c.redactErr(errors.New(text))
		for _, secret := range []string{sig, url.QueryEscape(sig), key, url.QueryEscape(key), "OTHERSIGNATURE"} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%q: the secret %q is shown: %v", text, secret, err)
			}
		}
		if !strings.Contains(err.Error(), "[REDACTED]") {
			t.Errorf("%q: nothing masked: %v", text, err)
		}
	}
	inner := context.Canceled
	err := c.redactErr(fmt.Errorf("with %s: %w", key, inner))
	if !errors.Is(err, context.Canceled) {
		t.Error("redaction lost the wrapped error")
	}
	ue := &url.Error{Op: "Put", URL: "https://acct.blob.core.windows.net/c/b?sv=1&sig=abc", Err: errors.New("EOF")}
	if got := describeAzure(ue).Error(); got != `Put https://acct.blob.core.windows.net/c/b: EOF` {
		t.Errorf("url error: %s", got)
	}
}
