package sink_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/pbicopy/pbicopy/internal/sinktest"
	"github.com/pbicopy/pbicopy/internal/sinktest/contract"
	"github.com/pbicopy/pbicopy/sink"
)

// fileSpec is the sink spec of a file output of format at path.
func fileSpec(format, path string, split bool) sink.Spec {
	var maxRows int64
	if split {
		maxRows = 1000
	}
	switch format {
	case "parquet":
		return sink.Spec{Parquet: &sink.ParquetOptions{Path: path, MaxRowsPerFile: maxRows}}
	default:
		return sink.Spec{CSV: &sink.CSVOptions{Path: path, MaxRowsPerFile: maxRows}}
	}
}

// openSpec opens the sink of spec at its rendered path, as a run does.
func openSpec(ctx context.Context, spec sink.Spec, path string, schema *arrow.Schema, env sink.Env) (sink.Sink, error) {
	target, err := spec.Target(sink.Resolver{Job: "contract"}, path, nil)
	if err != nil {
		return nil, err
	}
	return target.Open(ctx, schema, env)
}

// localFiles reads the files of a local folder by name.
func localFiles(dir string) contract.FileReader {
	return func(t *testing.T, name string) ([]byte, bool) {
		data, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if errors.Is(err, os.ErrNotExist) {
			return nil, false
		}
		if err != nil {
			t.Fatal(err)
		}
		return data, true
	}
}

// tempFilesIn lists the temporary files left in dir and its subfolders.
func tempFilesIn(dir string) func(t *testing.T) []string {
	return func(t *testing.T) []string {
		var left []string
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.Contains(d.Name(), ".tmp-") {
				left = append(left, p)
			}
			return err
		})
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		return left
	}
}

// localFile is a file output of format on the local disk.
func localFile(format string) func(t *testing.T) contract.Subject {
	return func(t *testing.T) contract.Subject {
		dir := t.TempDir()
		path := filepath.Join(dir, "out", "data."+format)
		spec := fileSpec(format, path, false)
		return contract.Subject{
			Kind: format,
			Open: func(ctx context.Context, schema *arrow.Schema, mem memory.Allocator) (sink.Sink, error) {
				return openSpec(ctx, spec, path, schema, sink.Env{Mem: mem})
			},
			Read: func(t *testing.T, schema *arrow.Schema) ([][]any, bool) {
				data, ok := localFiles(dir)(t, "out/data."+format)
				if !ok {
					return nil, false
				}
				return contract.DecodeFile(t, format, data, schema), true
			},
			Leftovers: tempFilesIn(dir),
		}
	}
}

// localSplit is a split output of format on the local disk: parts of at
// most 1,000 rows listed by a manifest.
func localSplit(format string) func(t *testing.T) contract.Subject {
	return func(t *testing.T) contract.Subject {
		dir := t.TempDir()
		path := filepath.Join(dir, "out", "part-"+sink.PartMarker+"."+format)
		spec := fileSpec(format, path, true)
		return contract.Subject{
			Kind: format,
			Open: func(ctx context.Context, schema *arrow.Schema, mem memory.Allocator) (sink.Sink, error) {
				return openSpec(ctx, spec, path, schema, sink.Env{Mem: mem})
			},
			Read: func(t *testing.T, schema *arrow.Schema) ([][]any, bool) {
				return contract.ReadSplit(t, localFiles(dir), "out/"+sink.ManifestName, format, schema)
			},
			Leftovers: func(t *testing.T) []string {
				left := tempFilesIn(dir)(t)
				listed := map[string]bool{sink.ManifestName: true}
				if data, ok := localFiles(dir)(t, "out/"+sink.ManifestName); ok {
					var m sink.Manifest
					if err := json.Unmarshal(data, &m); err != nil {
						t.Fatal(err)
					}
					for _, p := range m.Parts {
						listed[p.Path] = true
					}
				}
				entries, _ := os.ReadDir(filepath.Join(dir, "out"))
				for _, e := range entries {
					if !listed[e.Name()] && !strings.Contains(e.Name(), ".tmp-") {
						left = append(left, e.Name())
					}
				}
				return left
			},
		}
	}
}

func TestFileSinksKeepTheContract(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"parquet", "csv"} {
		t.Run(format, func(t *testing.T) { contract.Run(t, localFile(format)) })
		t.Run(format+" split", func(t *testing.T) { contract.Run(t, localSplit(format)) })
	}
}

// table is a PostgreSQL table loaded in mode (append or replace).
func table(mode string) func(t *testing.T) contract.Subject {
	return func(t *testing.T) contract.Subject {
		db := sinktest.OpenPG(t)
		opts := sink.PostgresOptions{DSN: db.DSN(), Table: db.Table("contract"), Mode: mode}
		s := contract.Subject{
			Kind:      "postgres",
			Unordered: true,
			Open: func(ctx context.Context, schema *arrow.Schema, _ memory.Allocator) (sink.Sink, error) {
				return sink.NewPostgres(ctx, schema, opts)
			},
			Read: func(t *testing.T, schema *arrow.Schema) ([][]any, bool) {
				if !db.Exists("contract") {
					return nil, false
				}
				return db.Rows("contract", schema, "i"), true
			},
		}
		if mode == "append" {
			s.Combine = func(before, committed [][]any) [][]any { return append(append([][]any(nil), before...), committed...) }
		}
		return s
	}
}

func TestPostgresKeepsTheContractIntegration(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"append", "replace"} {
		t.Run(mode, func(t *testing.T) { contract.Run(t, table(mode)) })
	}
}

// TestSplitCommitFaults fails a split output's commit at each step: the
// previous manifest and its parts stay as they were, and nothing is left.
func TestSplitCommitFaults(t *testing.T) {
	t.Parallel()
	for _, format := range []string{"parquet", "csv"} {
		t.Run(format, func(t *testing.T) {
			contract.SplitCommitFaults(t, format, func(t *testing.T) contract.SplitPlace {
				dir := t.TempDir()
				folder, err := sink.LocalFolder(dir)
				if err != nil {
					t.Fatal(err)
				}
				return contract.SplitPlace{Folder: folder, Read: localFiles(dir), Files: func(t *testing.T) map[string]string {
					files := map[string]string{}
					err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
						if err != nil || d.IsDir() {
							return err
						}
						data, err := os.ReadFile(p)
						rel, _ := filepath.Rel(dir, p)
						files[filepath.ToSlash(rel)] = string(data)
						return err
					})
					if err != nil {
						t.Fatal(err)
					}
					return files
				}}
			})
		})
	}
}
