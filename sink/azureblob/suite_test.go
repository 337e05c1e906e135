package azureblob_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/internal/sinktest"
	"github.com/pbicopy/pbicopy/internal/sinktest/contract"
	"github.com/pbicopy/pbicopy/sink"
	"github.com/pbicopy/pbicopy/sink/azureblob"
)

// blobPlace is a fresh container of the shared Azurite, reached as a job
// reaches it: through its storage block.
type blobPlace struct {
	cc       *container.Client
	name     string
	resolver sink.Resolver
}

func newBlobPlace(t *testing.T) *blobPlace {
	az := sinktest.StartAzurite(t)
	cc := sinktest.NewContainer(t, az)
	return &blobPlace{cc: cc, name: sinktest.ContainerName(cc), resolver: sink.Resolver{
		Job:     "contract",
		Storage: &sink.StorageSpec{ConnectionString: az.ConnectionString, BlockSize: sink.MinBlockSize},
	}}
}

func (p *blobPlace) open(ctx context.Context, spec sink.Spec, path string, schema *arrow.Schema, mem memory.Allocator) (sink.Sink, error) {
	target, err := spec.Target(p.resolver, path, nil)
	if err != nil {
		return nil, err
	}
	return target.Open(ctx, schema, sink.Env{Storage: azureblob.Storage{}, Mem: mem})
}

func (p *blobPlace) read(t *testing.T, name string) ([]byte, bool) {
	info, ok := sinktest.ReadBlob(t, p.cc, name)
	if ok && !strings.HasSuffix(name, sink.ManifestName) && (info.Metadata[azureblob.MetaRows] == "" || info.Metadata[azureblob.MetaSHA256] != sinktest.SHA256(info.Data)) {
		t.Errorf("blob %s: metadata %v does not describe it", name, info.Metadata)
	}
	return info.Data, ok
}

// strays lists the committed blobs that are not part of the output: name,
// or a split output's manifest and the parts it lists. (Blocks staged for
// an aborted upload are never committed and cannot be listed apart: the
// service discards them.)
func (p *blobPlace) strays(name string, split bool) func(t *testing.T) []string {
	return func(t *testing.T) []string {
		keep := map[string]bool{name: true}
		if split {
			keep = map[string]bool{"out/" + sink.ManifestName: true}
			if data, ok := p.read(t, "out/"+sink.ManifestName); ok {
				var m sink.Manifest
				if err := json.Unmarshal(data, &m); err != nil {
					t.Fatal(err)
				}
				for _, part := range m.Parts {
					keep["out/"+part.Path] = true
				}
			}
		}
		var left []string
		for _, n := range sinktest.ListBlobs(t, p.cc) {
			if !keep[n] {
				left = append(left, n)
			}
		}
		return left
	}
}

func blobFile(format string, split bool) func(t *testing.T) contract.Subject {
	return func(t *testing.T) contract.Subject {
		p := newBlobPlace(t)
		name := "out/data." + format
		spec := sink.Spec{Parquet: &sink.ParquetOptions{}}
		if format == "csv" {
			spec = sink.Spec{CSV: &sink.CSVOptions{}}
		}
		if split {
			name = "out/part-" + sink.PartMarker + "." + format
			if spec.Parquet != nil {
				spec.Parquet.MaxRowsPerFile = 1000
			} else {
				spec.CSV.MaxRowsPerFile = 1000
			}
		}
		path := "az://" + p.name + "/" + name
		if split {
			name = "out/" + sink.ManifestName
		}
		return contract.Subject{
			Kind: format,
			Open: func(ctx context.Context, schema *arrow.Schema, mem memory.Allocator) (sink.Sink, error) {
				return p.open(ctx, spec, path, schema, mem)
			},
			Read: func(t *testing.T, schema *arrow.Schema) ([][]any, bool) {
				if split {
					return contract.ReadSplit(t, p.read, name, format, schema)
				}
				data, ok := p.read(t, name)
				if !ok {
					return nil, false
				}
				return contract.DecodeFile(t, format, data, schema), true
			},
			Leftovers: p.strays(name, split),
		}
	}
}

func TestBlobOutputsKeepTheContractIntegration(t *testing.T) {
	for _, format := range []string{"parquet", "csv"} {
		t.Run(format, func(t *testing.T) { contract.Run(t, blobFile(format, false)) })
		t.Run(format+" split", func(t *testing.T) { contract.Run(t, blobFile(format, true)) })
	}
}

// TestSplitCommitFaultsIntegration fails a split output's commit into a
// blob folder at each step: the previous manifest and its parts stay as
// they were, and no blob is left.
func TestSplitCommitFaultsIntegration(t *testing.T) {
	for _, format := range []string{"parquet", "csv"} {
		t.Run(format, func(t *testing.T) {
			contract.SplitCommitFaults(t, format, func(t *testing.T) contract.SplitPlace {
				az := sinktest.StartAzurite(t)
				cc := sinktest.NewContainer(t, az)
				c, err := azureblob.OpenContainer(sink.BlobAccount{ConnectionString: az.ConnectionString}, sinktest.ContainerName(cc), sink.BlobOptions{BlockSize: sink.MinBlockSize}, nil, nil)
				if err != nil {
					t.Fatal(err)
				}
				const prefix = "sales/"
				return contract.SplitPlace{
					Folder: c.Folder(prefix),
					Read: func(t *testing.T, name string) ([]byte, bool) {
						info, ok := sinktest.ReadBlob(t, cc, prefix+name)
						return info.Data, ok
					},
					Files: func(t *testing.T) map[string]string {
						files := map[string]string{}
						for _, name := range sinktest.ListBlobs(t, cc) {
							info, _ := sinktest.ReadBlob(t, cc, name)
							files[strings.TrimPrefix(name, prefix)] = string(info.Data)
						}
						return files
					},
				}
			})
		})
	}
}
