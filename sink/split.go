package sink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
)

// Folder is where file outputs are published: a local directory
// (LocalFolder) or a blob container or a folder of one (BlobContainer).
// Names are relative to the folder, with / between subfolders.
type Folder interface {
	// Open returns a Destination that publishes the named file; with
	// overwrite false it fails, wrapping ErrExists, if the file exists, and
	// so does its Commit if the file appeared meanwhile.
	Open(ctx context.Context, name string, overwrite bool) (Destination, error)
	// ReadFile returns the content of the named file, or an error wrapping
	// fs.ErrNotExist if there is none.
	ReadFile(ctx context.Context, name string) ([]byte, error)
	// Remove deletes the named file; a missing file is not an error.
	Remove(ctx context.Context, name string) error
	// Location is the absolute path or URL of the named file, for messages
	// and results; it holds no secret.
	Location(name string) string
}

// LocalFolder returns the Folder of a local directory, relative to the
// current working directory if dir is relative. Its files are published
// as OpenLocal (or, not to overwrite, OpenLocalNew) publishes them.
func LocalFolder(dir string) (Folder, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local folder %s: %w", dir, err)
	}
	return localFolder{dir: abs}, nil
}

type localFolder struct{ dir string }

func (l localFolder) Location(name string) string {
	return filepath.Join(l.dir, filepath.FromSlash(name))
}

func (l localFolder) Open(_ context.Context, name string, overwrite bool) (Destination, error) {
	if overwrite {
		return OpenLocal(l.Location(name))
	}
	return OpenLocalNew(l.Location(name))
}

func (l localFolder) ReadFile(_ context.Context, name string) ([]byte, error) {
	return os.ReadFile(l.Location(name))
}

func (l localFolder) Remove(_ context.Context, name string) error {
	if err := os.Remove(l.Location(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// PartMarker stands for the part number in the name pattern of a split
// output.
const PartMarker = "{{.part}}"

// ManifestName is the name of the manifest of a split output, in the
// folder of its parts.
const ManifestName = "_manifest.json"

// ManifestVersion is the version of the manifest format written.
const ManifestVersion = 1

// PartName returns the name of part n (counting from 0) of a split output
// whose names follow pattern: the number is zero-padded to five digits
// (00000, 00001, ...), and longer past 99999.
func PartName(pattern string, n int) string {
	return strings.ReplaceAll(pattern, PartMarker, fmt.Sprintf("%05d", n))
}

// Manifest lists the parts of a split output. It is written last, so a
// reader can trust the folder once it exists.
type Manifest struct {
	Version int            `json:"version"`
	Job     string         `json:"job,omitempty"`
	Format  string         `json:"format"` // parquet or csv
	Created time.Time      `json:"created"`
	Rows    int64          `json:"rows"`
	Bytes   int64          `json:"bytes"`
	Parts   []ManifestPart `json:"parts"`
}

// ManifestPart is one part of a split output.
type ManifestPart struct {
	Path   string `json:"path"` // relative to the manifest's folder
	Rows   int64  `json:"rows"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"` // hex
}

// SplitConfig describes a split output.
type SplitConfig struct {
	// Folder holds the parts and the manifest.
	Folder Folder
	// Pattern is the name of every part relative to Folder, holding
	// PartMarker where the part number goes, e.g. part-{{.part}}.parquet.
	Pattern string
	// Encoder returns the encoder writing one part to dst, such as
	// NewParquet or NewCSV. It is called once per part.
	Encoder func(dst Destination) (Sink, error)
	// Format names the encoding in the manifest and the result.
	Format string
	// Job is recorded in the manifest.
	Job string
	// Output holds the limits (MaxRows, MaxBytes: at least one set) and the
	// overwrite policy of every part and of the manifest.
	Output OutputOptions
	// Now returns the manifest's creation time; nil means time.Now.
	Now func() time.Time
}

// splitSink writes one output as numbered parts plus a manifest.
type splitSink struct {
	cfg      SplitConfig
	match    *regexp.Regexp // names cfg.Pattern makes
	parts    []*splitPart   // finished parts, then the current one
	cur      Sink           // encoder of the current part; nil after a cut
	curRows  int64
	err      error
	finished bool // committed or aborted
}

// splitPart is one part: its destination, held back from publishing until
// the whole output commits.
type splitPart struct {
	name string
	dst  Destination
	held *heldDest
}

var _ Sink = (*splitSink)(nil)

// NewSplit returns a Sink writing batches as numbered parts of at most
// cfg.Output.MaxRows rows and about cfg.Output.MaxBytes encoded bytes, each
// part a complete file of its own, listed by a manifest.
//
// A part is cut between batches once it holds MaxBytes (counting what its
// encoder has buffered, so a part exceeds MaxBytes by less than one batch,
// plus its footer); for MaxRows a batch is sliced so that every part but
// the last has exactly MaxRows rows. An empty output is one part with no
// rows. A cut part is finished (its encoder closed, its file flushed or its
// blocks staged) and holds no buffer, but nothing is published before
// Commit, so a failure of the source, however late, leaves the previous
// output untouched, as it does for a single file.
//
// Commit publishes in this order: it removes the previous manifest (so
// that readers stop trusting the folder), publishes every part, each one
// atomically, writes the new manifest (ManifestName, in the folder, listing
// the parts in order with their rows, bytes and SHA-256), and last removes
// the parts the previous manifest listed that this run did not rewrite
// (only names cfg.Pattern makes are ever removed; failures are reported in
// Result.Warnings). If Commit fails midway, some parts may be published
// but no manifest is: the folder must not be trusted until a run succeeds.
// With cfg.Output.Overwrite false, NewSplit fails if a manifest exists,
// and every part and the manifest are created only if absent. Abort
// publishes nothing.
//
// NewSplit opens the first part at once, so that a refused credential or
// an existing file is reported before any row is read.
func NewSplit(ctx context.Context, cfg SplitConfig) (Sink, error) {
	if !strings.Contains(cfg.Pattern, PartMarker) {
		return nil, fmt.Errorf("split output %s: the name has no %s", cfg.Folder.Location(cfg.Pattern), PartMarker)
	}
	if !cfg.Output.Split() {
		return nil, errors.New("split output: neither a row nor a byte limit is set")
	}
	s := &splitSink{cfg: cfg, match: partRE(cfg.Pattern)}
	if !cfg.Output.Overwrite {
		_, err := cfg.Folder.ReadFile(ctx, ManifestName)
		switch {
		case err == nil:
			return nil, fmt.Errorf("split output %s: %w", cfg.Folder.Location(ManifestName), ErrExists)
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("split output: read the previous manifest: %w", err)
		}
	}
	if err := s.openPart(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// partRE matches the names pattern makes, with the part number captured
// (and the same number wherever the marker appears).
func partRE(pattern string) *regexp.Regexp {
	pieces := strings.Split(pattern, PartMarker)
	for i, p := range pieces {
		pieces[i] = regexp.QuoteMeta(p)
	}
	expr := pieces[0]
	for i, p := range pieces[1:] {
		if i == 0 {
			expr += `(\d{5,})` + p
		} else {
			expr += `\d{5,}` + p
		}
	}
	return regexp.MustCompile("^" + expr + "$")
}

// madeByPattern reports whether name is a part name of the pattern.
func (s *splitSink) madeByPattern(name string) bool {
	m := s.match.FindStringSubmatch(name)
	if m == nil {
		return false
	}
	n, err := strconv.Atoi(m[1])
	return err == nil && PartName(s.cfg.Pattern, n) == name
}

// openPart opens the next part and its encoder.
func (s *splitSink) openPart(ctx context.Context) error {
	name := PartName(s.cfg.Pattern, len(s.parts))
	dst, err := s.cfg.Folder.Open(ctx, name, s.cfg.Output.Overwrite)
	if err != nil {
		return err
	}
	held := &heldDest{Destination: dst}
	enc, err := s.cfg.Encoder(held)
	if err != nil {
		_ = dst.Abort(ctx)
		return err
	}
	s.parts = append(s.parts, &splitPart{name: name, dst: dst, held: held})
	s.cur, s.curRows = enc, 0
	return nil
}

// Write passes rec to the current part, slicing it at the row limit and
// starting a new part when a limit is reached. It does not keep rec.
func (s *splitSink) Write(ctx context.Context, rec arrow.RecordBatch) error {
	if s.err != nil {
		return s.err
	}
	if s.finished {
		return errors.New("write: sink already committed or aborted")
	}
	if err := ctx.Err(); err != nil {
		return s.fail(err)
	}
	n := rec.NumRows()
	if n == 0 {
		if s.cur == nil {
			return nil
		}
		return s.fail(s.cur.Write(ctx, rec))
	}
	maxRows := s.cfg.Output.MaxRows
	for off := int64(0); off < n; {
		if s.cur == nil {
			if err := s.openPart(ctx); err != nil {
				return s.fail(err)
			}
		}
		k := n - off
		if maxRows > 0 {
			k = min(k, maxRows-s.curRows)
		}
		piece := rec
		if k != n {
			piece = rec.NewSlice(off, off+k)
		}
		err := s.cur.Write(ctx, piece)
		if piece != rec {
			piece.Release()
		}
		if err != nil {
			return s.fail(err)
		}
		s.curRows += k
		off += k
		if maxRows > 0 && s.curRows >= maxRows || s.cfg.Output.MaxBytes > 0 && encodedBytes(s.cur) >= s.cfg.Output.MaxBytes {
			if err := s.cut(ctx); err != nil {
				return s.fail(err)
			}
		}
	}
	return nil
}

// sized is an encoder that knows the size of its output so far.
type sized interface{ encodedBytes() int64 }

func encodedBytes(s Sink) int64 {
	if z, ok := s.(sized); ok {
		return z.encodedBytes()
	}
	return 0
}

// cut finishes the current part; it is published by Commit.
func (s *splitSink) cut(ctx context.Context) error {
	enc := s.cur
	s.cur = nil
	if _, err := enc.Commit(ctx); err != nil {
		return fmt.Errorf("part %d: %w", len(s.parts)-1, err)
	}
	return nil
}

// fail records the first failure of Write, which every later Write and
// Commit return.
func (s *splitSink) fail(err error) error {
	if err != nil && s.err == nil {
		s.err = err
	}
	return err
}

// Commit publishes the parts and then the manifest.
func (s *splitSink) Commit(ctx context.Context) (Result, error) {
	if s.err != nil {
		return Result{}, errors.Join(s.err, s.Abort(ctx))
	}
	if s.finished {
		return Result{}, errors.New("commit: sink already committed or aborted")
	}
	if err := ctx.Err(); err != nil {
		return Result{}, errors.Join(err, s.Abort(ctx))
	}
	if s.cur != nil {
		if err := s.cut(ctx); err != nil {
			return Result{}, errors.Join(err, s.Abort(ctx))
		}
	}
	var prev *Manifest
	var warnings []string
	if s.cfg.Output.Overwrite {
		data, err := s.cfg.Folder.ReadFile(ctx, ManifestName)
		switch {
		case err == nil:
			prev = &Manifest{}
			if jerr := json.Unmarshal(data, prev); jerr != nil {
				prev = nil
				warnings = append(warnings, fmt.Sprintf("the previous manifest %s is not valid JSON (%v): the parts it listed that this run did not rewrite were left in place", s.cfg.Folder.Location(ManifestName), jerr))
			}
			if err := s.cfg.Folder.Remove(ctx, ManifestName); err != nil {
				return Result{}, errors.Join(fmt.Errorf("remove the previous manifest: %w", err), s.Abort(ctx))
			}
		case !errors.Is(err, fs.ErrNotExist):
			return Result{}, errors.Join(fmt.Errorf("read the previous manifest: %w", err), s.Abort(ctx))
		}
	}
	m := Manifest{Version: ManifestVersion, Job: s.cfg.Job, Format: s.cfg.Format, Created: s.now().UTC()}
	res := Result{Kind: s.cfg.Format, Location: s.cfg.Folder.Location(ManifestName)}
	for i, p := range s.parts {
		f, err := p.dst.Commit(ctx, p.held.rows)
		if err != nil {
			return Result{}, errors.Join(fmt.Errorf("publish part %d of %d (no manifest was written): %w", i+1, len(s.parts), err), s.Abort(ctx))
		}
		m.Parts = append(m.Parts, ManifestPart{Path: p.name, Rows: f.Rows, Bytes: f.Bytes, SHA256: f.SHA256})
		m.Rows += f.Rows
		m.Bytes += f.Bytes
		res.Files = append(res.Files, f)
	}
	s.finished = true
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Result{}, err
	}
	data = append(data, '\n')
	mdst, err := s.cfg.Folder.Open(ctx, ManifestName, s.cfg.Output.Overwrite)
	if err != nil {
		return Result{}, fmt.Errorf("write the manifest (the parts are published): %w", err)
	}
	if _, err := mdst.Write(data); err != nil {
		_ = mdst.Abort(ctx)
		return Result{}, fmt.Errorf("write the manifest (the parts are published): %w", err)
	}
	if _, err := mdst.Commit(ctx, m.Rows); err != nil {
		return Result{}, fmt.Errorf("write the manifest (the parts are published): %w", err)
	}
	if prev != nil {
		for _, p := range prev.Parts {
			if slices.ContainsFunc(s.parts, func(q *splitPart) bool { return q.name == p.Path }) {
				continue
			}
			if !s.madeByPattern(p.Path) {
				warnings = append(warnings, fmt.Sprintf("the previous manifest listed %q, which this output does not name: left in place", p.Path))
				continue
			}
			if err := s.cfg.Folder.Remove(ctx, p.Path); err != nil {
				warnings = append(warnings, fmt.Sprintf("remove the previous part %s: %v", s.cfg.Folder.Location(p.Path), err))
			}
		}
	}
	res.Rows, res.Bytes, res.Warnings = m.Rows, m.Bytes, warnings
	return res, nil
}

func (s *splitSink) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

// Abort discards the current part and every part not yet published.
func (s *splitSink) Abort(ctx context.Context) error {
	if s.finished {
		return nil
	}
	s.finished = true
	var errs []error
	if s.cur != nil {
		errs = append(errs, s.cur.Abort(ctx))
		s.cur = nil
	}
	for _, p := range s.parts {
		errs = append(errs, p.dst.Abort(ctx))
	}
	return errors.Join(errs...)
}

// heldDest stands between a part's encoder and its destination: the
// encoder's Commit only finishes the destination (see Finisher), and
// records the row count; the split sink publishes it later.
type heldDest struct {
	Destination
	rows int64
}

func (h *heldDest) Commit(ctx context.Context, rows int64) (File, error) {
	if f, ok := h.Destination.(Finisher); ok {
		if err := f.Finish(ctx); err != nil {
			return File{}, errors.Join(err, h.Destination.Abort(ctx))
		}
	}
	h.rows = rows
	return File{}, nil
}
