package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pbicopy/pbicopy/jobfile"
	"github.com/pbicopy/pbicopy/sink"
)

// State records the completed partitions of a partitioned job, so that
// --resume can skip them. A partition is recorded only after every one of
// its sinks committed; a crash between the commits and the record makes
// --resume run that partition again, which the sinks make idempotent
// (files are replaced, replacePartition deletes before it inserts).
type State struct {
	Job        string                     `json:"job"`
	Partitions map[string]PartitionRecord `json:"partitions"`
}

// PartitionRecord is one completed partition.
type PartitionRecord struct {
	// Fingerprint identifies what the partition ran: its parameters, its
	// query and its outputs. --resume skips a partition only when the
	// fingerprint matches, so a run with other parameters (another
	// --param region, another query) is never mistaken for done.
	Fingerprint string         `json:"fingerprint"`
	Rows        int64          `json:"rows"`
	FinishedAt  time.Time      `json:"finishedAt"`
	Outputs     []OutputRecord `json:"outputs"`
}

// OutputRecord is one published output of a partition.
type OutputRecord struct {
	Kind     string `json:"kind"`
	Location string `json:"location"`
	Rows     int64  `json:"rows"`
	Bytes    int64  `json:"bytes,omitempty"`
	SHA256   string `json:"sha256,omitempty"`
}

// stateFile is a job's state, kept as a local file or a blob beside the
// outputs and published atomically like them. Shards write files of their
// own (<job>.shard-<i>-of-<n>.json) beside each other; --resume reads the
// unsharded file and every shard's of the same n.
type stateFile struct {
	mu     sync.Mutex
	folder sink.Folder
	name   string
	state  State
	done   map[string]string // partition key -> fingerprint
}

// StatePath is where the state of job lives (a local path or a blob URL):
// state.path, else .pbicopy-state/<job>.json in the output folder of the
// first file sink (the part of its path before any template).
func StatePath(job *jobfile.Job) (string, error) {
	if job.State != nil && job.State.Path != "" {
		return job.State.Path, nil
	}
	for _, s := range job.Sinks {
		p := s.Path()
		if p == "" {
			continue
		}
		if i := strings.Index(p, "{{"); i >= 0 {
			p = p[:i]
		}
		dir := p[:strings.LastIndexAny(p, `/\`)+1]
		if strings.HasSuffix(dir, "://") {
			continue // the container itself is templated: no folder to keep state in
		}
		return dir + ".pbicopy-state/" + job.Name + ".json", nil
	}
	return "", fmt.Errorf("job %s: no file sink to keep the partition state beside: set state.path (a local path or az://container/path)", job.Name)
}

func (r *Runner) openState(ctx context.Context, job *jobfile.Job, shard Shard, resume bool) (*stateFile, error) {
	base, err := StatePath(job)
	if err != nil {
		return nil, err
	}
	folder, name, err := job.Resolver().StateFolder(ctx, r.Storage, base)
	if err != nil {
		return nil, err
	}
	stem := strings.TrimSuffix(name, ".json")
	own := name
	if shard.N > 1 {
		own = fmt.Sprintf("%s.shard-%d-of-%d.json", stem, shard.I, shard.N)
	}
	sf := &stateFile{folder: folder, name: own, state: State{Job: job.Name, Partitions: map[string]PartitionRecord{}}, done: map[string]string{}}
	// Keep what this file recorded before, resuming or not: a later
	// --resume still knows those partitions are done.
	if err := sf.read(ctx, own, true); err != nil {
		return nil, err
	}
	if !resume {
		return sf, nil
	}
	names := []string{name}
	if shard.N > 1 {
		for i := range shard.N {
			names = append(names, fmt.Sprintf("%s.shard-%d-of-%d.json", stem, i, shard.N))
		}
	}
	for _, n := range names {
		if err := sf.read(ctx, n, false); err != nil {
			return nil, err
		}
	}
	return sf, nil
}

// read loads the records of one state file; own says it is the file this
// run writes.
func (s *stateFile) read(ctx context.Context, name string, own bool) error {
	data, err := s.folder.ReadFile(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read state %s: %w", s.folder.Location(name), err)
	}
	var st State
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("state %s is damaged (%v): delete it to start over, or fix it", s.folder.Location(name), err)
	}
	for k, v := range st.Partitions {
		s.done[k] = v.Fingerprint
		if own {
			s.state.Partitions[k] = v
		}
	}
	return nil
}

// isDone reports whether a partition was completed by an earlier run with
// the same fingerprint, and is to be skipped.
func (s *stateFile) isDone(key, fingerprint string) bool {
	if s == nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	fp, ok := s.done[key]
	return ok && fp == fingerprint
}

// record marks a partition as done and publishes the state atomically.
func (s *stateFile) record(ctx context.Context, key, fingerprint string, pr *PartitionResult) error {
	if s == nil {
		return nil
	}
	rec := PartitionRecord{Fingerprint: fingerprint, Rows: pr.Rows, FinishedAt: time.Now().UTC()}
	for _, sr := range pr.Sinks {
		out := OutputRecord{Kind: sr.Kind, Location: sr.Location, Rows: sr.Rows, Bytes: sr.Bytes}
		if len(sr.Files) == 1 {
			out.SHA256 = sr.Files[0].SHA256
		}
		rec.Outputs = append(rec.Outputs, out)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.state.Partitions[key] = rec
	s.done[key] = fingerprint
	return s.writeLocked(ctx)
}

// restart begins a run that does not resume: the records of the
// partitions it is about to run are dropped first, so that whatever stops
// it (a failure, an interruption, a kill) leaves recorded only what this
// run completed, and --resume carries on this run rather than an earlier
// one whose outputs a restatement is replacing. The records of other
// partitions stay. Nothing is written when none of keys was recorded.
func (s *stateFile) restart(ctx context.Context, keys []string) error {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.done)
	dropped := false
	for _, k := range keys {
		if _, ok := s.state.Partitions[k]; ok {
			delete(s.state.Partitions, k)
			dropped = true
		}
	}
	if !dropped {
		return nil
	}
	return s.writeLocked(ctx)
}

// writeLocked publishes the state atomically; s.mu is held.
func (s *stateFile) writeLocked(ctx context.Context) error {
	data, err := json.MarshalIndent(s.state, "", "  ")
	if err != nil {
		return err
	}
	dst, err := s.folder.Open(ctx, s.name, true)
	if err != nil {
		return fmt.Errorf("write state %s: %w", s.folder.Location(s.name), err)
	}
	if _, err := dst.Write(append(data, '\n')); err != nil {
		_ = dst.Abort(ctx)
		return fmt.Errorf("write state %s: %w", s.folder.Location(s.name), err)
	}
	if _, err := dst.Commit(ctx, int64(len(s.state.Partitions))); err != nil {
		return fmt.Errorf("write state %s: %w", s.folder.Location(s.name), err)
	}
	return nil
}

// Location is where the state is written.
func (s *stateFile) Location() string { return s.folder.Location(s.name) }

// fingerprint identifies what a partition runs: its parameter values, its
// rendered query (or table and key) and its outputs.
func fingerprint(job *jobfile.Job, p jobfile.Partition) (string, error) {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(p.Params)) {
		if k == jobfile.RunIDParam {
			continue // differs at every run; an output path that uses it differs too
		}
		fmt.Fprintf(h, "param %s=%v\x00", k, p.Params[k])
	}
	if pb := job.Source.PowerBI; pb != nil {
		text, err := job.RenderSource(p.Params)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "source %s %s %s\x00", pb.Workspace, pb.Dataset, text)
		if pb.Paging != nil {
			fmt.Fprintf(h, "key %s\x00", pb.Paging.Key)
		}
	} else {
		fmt.Fprintf(h, "file %s\x00", job.Source.File)
	}
	sinks, err := renderPaths(job, p)
	if err != nil {
		return "", err
	}
	for _, s := range sinks {
		fmt.Fprintf(h, "sink %s\x00", s.target.Identity())
	}
	return hex.EncodeToString(h.Sum(nil)[:16]), nil
}
