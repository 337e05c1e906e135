package sink

import (
	"bytes"
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

// Exists reports whether the named file exists.
func (l localFolder) Exists(_ context.Context, name string) (bool, error) {
	_, err := os.Lstat(l.Location(name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
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
// whose names follow pattern, without a generation: the number is
// zero-padded to five digits (00000, 00001, ...), and longer past 99999.
func PartName(pattern string, n int) string {
	return partName(pattern, n, 0)
}

// partName is the name of part n of generation gen: PartMarker becomes
// 00000-g<gen> (the number alone for generation 0, the names written
// before generations).
func partName(pattern string, n int, gen int64) string {
	num := fmt.Sprintf("%05d", n)
	if gen > 0 {
		num += "-g" + strconv.FormatInt(gen, 10)
	}
	return strings.ReplaceAll(pattern, PartMarker, num)
}

// Manifest lists the parts of a split output. It is written last, so a
// reader can trust the folder once it exists. It holds no time and no
// random value: the same rows give the same manifest, byte for byte, in
// the same generation (the file's or blob's modification time says when).
type Manifest struct {
	Version int    `json:"version"`
	Job     string `json:"job,omitempty"`
	Format  string `json:"format"` // parquet or csv
	// Generation counts the commits of the output: every commit writes its
	// parts under names of the next generation, so that it never replaces
	// a part the manifest it replaces lists.
	Generation int64          `json:"generation,omitempty"`
	Rows       int64          `json:"rows"`
	Bytes      int64          `json:"bytes"`
	Parts      []ManifestPart `json:"parts"`
	// Metadata is what the job recorded with the data (the sensitivity
	// label of the data: sensitivity_label_id, sensitivity_label_name).
	Metadata map[string]string `json:"metadata,omitempty"`
	// Replaced names the parts of the manifest this one replaced, which
	// its commit deletes once it is published: a commit stopped before it
	// deleted them all (a killed process) leaves their names to the next
	// commit, which deletes what is left. Readers ignore it.
	Replaced []string `json:"replaced,omitempty"`
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
	// Metadata, when not nil, is recorded in the manifest (read at Commit).
	Metadata func() map[string]string
	// Output holds the limits (MaxRows, MaxBytes: at least one set) and the
	// overwrite policy of every part and of the manifest.
	Output OutputOptions
}

// splitSink writes one output as numbered parts plus a manifest.
type splitSink struct {
	cfg      SplitConfig
	match    *regexp.Regexp // names cfg.Pattern makes
	gen      int64          // generation of the parts written
	stale    []int64        // generations skipped: parts a failed commit left
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
// Commit is all or nothing for readers that follow the manifest. Every
// commit writes its parts under new names, those of the next generation
// (part-00000-g7.parquet after a manifest of generation 6), so it never
// replaces a file the current manifest lists. It publishes in this order:
// every part (each one atomically, created only if absent), then the new
// manifest (ManifestName, in the folder, listing the parts in order with
// their rows, bytes and SHA-256; one atomic replace), and last it removes
// the parts the previous manifest listed (only names cfg.Pattern makes are
// ever removed; failures are reported in Result.Warnings). If Commit fails
// before the manifest is replaced, it removes the parts it published, and
// the previous manifest and its parts stay as they were: readers go on
// reading the previous output. A part of the next generation found
// published when the sink opens was left by a commit that never finished
// (a killed process): that generation is skipped, and its parts are removed
// once the new manifest is published.
// With cfg.Output.Overwrite false, NewSplit fails if a manifest exists,
// and so does Commit if one appeared meanwhile. Abort publishes nothing.
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
	prev, _, err := s.previous(ctx)
	if err != nil {
		return nil, err
	}
	if prev != nil {
		s.gen = prev.Generation
	}
	s.gen++
	// A published part 0 of the next generation is what a commit that
	// never finished left: skip that generation (parts are published in
	// order and removed in reverse, so part 0 is there if any is).
	for {
		err := s.openPart(ctx)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, ErrExists) || len(s.stale) >= maxStaleGenerations {
			return nil, err
		}
		s.stale = append(s.stale, s.gen)
		s.gen++
	}
}

// maxStaleGenerations bounds the generations a split output skips when it
// opens: each one is the leftover of a commit that did not finish, which
// the next successful commit removes.
const maxStaleGenerations = 100

// previous reads the manifest in the folder: nil if there is none or, with
// a warning, if it is not valid JSON. With overwrite false an existing
// manifest is an error wrapping ErrExists.
func (s *splitSink) previous(ctx context.Context) (*Manifest, []string, error) {
	data, err := s.cfg.Folder.ReadFile(ctx, ManifestName)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("split output: read the previous manifest: %w", err)
	case !s.cfg.Output.Overwrite:
		return nil, nil, fmt.Errorf("split output %s: %w", s.cfg.Folder.Location(ManifestName), ErrExists)
	}
	prev := &Manifest{}
	if err := json.Unmarshal(data, prev); err != nil {
		return nil, []string{fmt.Sprintf("the previous manifest %s is not valid JSON (%v): the parts it listed were left in place", s.cfg.Folder.Location(ManifestName), err)}, nil
	}
	return prev, nil, nil
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
			expr += `(\d{5,})(?:-g(\d+))?` + p
		} else {
			expr += `\d{5,}(?:-g\d+)?` + p
		}
	}
	return regexp.MustCompile("^" + expr + "$")
}

// madeByPattern reports whether name is a part name of the pattern, of any
// generation.
func (s *splitSink) madeByPattern(name string) bool {
	m := s.match.FindStringSubmatch(name)
	if m == nil {
		return false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		return false
	}
	var gen int64
	if m[2] != "" {
		if gen, err = strconv.ParseInt(m[2], 10, 64); err != nil || gen == 0 {
			return false
		}
	}
	return partName(s.cfg.Pattern, n, gen) == name
}

// openPart opens the next part and its encoder. Parts are new names, so
// they are always created only if absent: a part found there was left by
// a commit that did not finish, or is being published by another run.
func (s *splitSink) openPart(ctx context.Context) error {
	name := partName(s.cfg.Pattern, len(s.parts), s.gen)
	dst, err := s.cfg.Folder.Open(ctx, name, false)
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
	s.finished = true
	prev, warnings, err := s.previous(ctx)
	if err != nil {
		return Result{}, s.rollback(ctx, 0, err)
	}
	m := Manifest{Version: ManifestVersion, Job: s.cfg.Job, Format: s.cfg.Format, Generation: s.gen}
	if s.cfg.Metadata != nil {
		m.Metadata = s.cfg.Metadata()
	}
	if prev != nil {
		for _, p := range prev.Parts {
			if s.madeByPattern(p.Path) && !s.ownPart(p.Path) {
				m.Replaced = append(m.Replaced, p.Path)
			}
		}
	}
	res := Result{Kind: s.cfg.Format, Location: s.cfg.Folder.Location(ManifestName)}
	for i, p := range s.parts {
		f, err := p.dst.Commit(ctx, p.held.rows)
		if err != nil {
			return Result{}, s.rollback(ctx, i, fmt.Errorf("publish part %d of %d: %w", i+1, len(s.parts), err))
		}
		m.Parts = append(m.Parts, ManifestPart{Path: p.name, Rows: f.Rows, Bytes: f.Bytes, SHA256: f.SHA256})
		m.Rows += f.Rows
		m.Bytes += f.Bytes
		res.Files = append(res.Files, f)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Result{}, s.rollback(ctx, len(s.parts), err)
	}
	data = append(data, '\n')
	if err := s.writeManifest(ctx, data); err != nil {
		return Result{}, s.rollback(ctx, len(s.parts), fmt.Errorf("write the manifest: %w", err))
	}
	if prev != nil {
		for _, p := range prev.Parts {
			if s.ownPart(p.Path) {
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
	if prev != nil {
		// The parts the previous manifest replaced: all gone, unless the
		// commit that wrote it was stopped before it deleted them.
		for _, name := range prev.Replaced {
			if !s.madeByPattern(name) || s.ownPart(name) {
				continue
			}
			if err := s.cfg.Folder.Remove(ctx, name); err != nil {
				warnings = append(warnings, fmt.Sprintf("remove the part %s, which an earlier commit replaced: %v", s.cfg.Folder.Location(name), err))
			}
		}
	}
	for _, gen := range s.stale {
		warnings = append(warnings, s.removeGeneration(ctx, gen)...)
	}
	res.Rows, res.Bytes, res.Warnings = m.Rows, m.Bytes, warnings
	return res, nil
}

// ownPart reports whether this commit wrote the part named name.
func (s *splitSink) ownPart(name string) bool {
	return slices.ContainsFunc(s.parts, func(q *splitPart) bool { return q.name == name })
}

// writeManifest publishes the manifest. A failed publish whose outcome is
// unknown (a blob commit whose answer was lost) is checked by reading the
// manifest back: if it holds data, it was published.
func (s *splitSink) writeManifest(ctx context.Context, data []byte) error {
	dst, err := s.cfg.Folder.Open(ctx, ManifestName, s.cfg.Output.Overwrite)
	if err != nil {
		return err
	}
	if _, err := dst.Write(data); err != nil {
		_ = dst.Abort(ctx)
		return err
	}
	f, err := dst.Commit(ctx, int64(len(s.parts)))
	if err == nil || f.Location != "" {
		return nil // a Location says it is published (a directory sync failed)
	}
	if got, rerr := s.cfg.Folder.ReadFile(context.WithoutCancel(ctx), ManifestName); rerr == nil && bytes.Equal(got, data) {
		return nil
	}
	return err
}

// rollback ends a Commit that failed before the manifest was replaced: it
// aborts the parts not published and removes, last first, the first
// published ones, so that nothing of this commit stays beside the previous
// output. A part that cannot be removed is named in the error.
func (s *splitSink) rollback(ctx context.Context, published int, cause error) error {
	errs := []error{cause}
	for _, p := range s.parts {
		errs = append(errs, p.dst.Abort(ctx)) // a no-op for the published ones
	}
	rctx := context.WithoutCancel(ctx)
	for i := published - 1; i >= 0; i-- {
		name := s.parts[i].name
		if err := s.cfg.Folder.Remove(rctx, name); err != nil {
			errs = append(errs, fmt.Errorf("remove the new part %s, which no manifest lists: %w", s.cfg.Folder.Location(name), err))
		}
	}
	return errors.Join(errs...)
}

// removeGeneration removes the parts of a generation that a commit which
// never finished published, last first, and returns the failures as
// warnings. It stops at the first part number that is absent.
func (s *splitSink) removeGeneration(ctx context.Context, gen int64) []string {
	st, ok := s.cfg.Folder.(statFolder)
	if !ok {
		return []string{fmt.Sprintf("parts of generation %d, left by a commit that did not finish, could not be listed: remove %s", gen, s.cfg.Folder.Location(partName(s.cfg.Pattern, 0, gen)))}
	}
	var names []string
	for n := 0; ; n++ {
		name := partName(s.cfg.Pattern, n, gen)
		exists, err := st.Exists(ctx, name)
		if err != nil {
			return []string{fmt.Sprintf("look up %s: %v", s.cfg.Folder.Location(name), err)}
		}
		if !exists {
			break
		}
		names = append(names, name)
	}
	var warnings []string
	for _, name := range slices.Backward(names) {
		if err := s.cfg.Folder.Remove(ctx, name); err != nil {
			warnings = append(warnings, fmt.Sprintf("remove %s, left by a commit that did not finish: %v", s.cfg.Folder.Location(name), err))
		}
	}
	return warnings
}

// statFolder is a Folder that tells whether a file exists without reading
// it: local folders and blob folders.
type statFolder interface {
	Exists(ctx context.Context, name string) (bool, error)
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
