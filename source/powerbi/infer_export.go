package powerbi

import (
	"bytes"
	"fmt"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/pbicopy/pbicopy/mapping"
)

// InferredColumn is a column inference chose from a sample, with what the
// data engineer should review about it.
type InferredColumn struct {
	mapping.Column
	// NonNull is the number of sampled rows where the key had a value.
	NonNull int
	// Renamed is set when the column's name is not the plain snake_case of
	// the key's column part, because another key's name collided with it.
	Renamed bool
	// Note says why the type deserves a look ("" when nothing does): the
	// key was null in every sampled row, or its values mixed kinds.
	Note string
}

// Sampler is a rowReceiver that observes rows the way an Inferrer
// samples them, without keeping them or building batches, so that a sample
// can be turned into a mapping (pbicopy infer). Columns applies the same
// rules as an Inferrer: the same names, types and notes.
type Sampler struct {
	keyIdx  map[string]int
	rawKeys [][]byte
	stats   []valueStats
	rows    int
}

// NewSampler returns an empty Sampler.
func NewSampler() *Sampler { return &Sampler{keyIdx: map[string]int{}} }

// Field observes one key and its raw JSON value; see rowReceiver.
func (s *Sampler) Field(key, value []byte) error {
	k, ok := s.keyIdx[string(key)]
	if !ok {
		k = len(s.rawKeys)
		s.keyIdx[string(key)] = k
		s.rawKeys = append(s.rawKeys, bytes.Clone(key))
		s.stats = append(s.stats, valueStats{})
	}
	if len(value) > 0 && value[0] != 'n' {
		s.stats[k].observe(value)
	}
	return nil
}

// EndRow counts a row; see rowReceiver.
func (s *Sampler) EndRow() error {
	s.rows++
	return nil
}

// Rows returns the number of rows observed.
func (s *Sampler) Rows() int { return s.rows }

// Columns infers one column per key seen, in the order the keys first
// came. It returns ErrNoRowsToInfer when no row was observed.
func (s *Sampler) Columns() ([]InferredColumn, error) {
	if s.rows == 0 || len(s.rawKeys) == 0 {
		return nil, ErrNoRowsToInfer
	}
	keys := make([]string, len(s.rawKeys))
	for i, rk := range s.rawKeys {
		k, err := jsontext.AppendUnquote(nil, rk)
		if err != nil {
			return nil, fmt.Errorf("row key %s: %w", displayValue(rk), err)
		}
		keys[i] = string(k)
	}
	names, _ := mapping.TargetNames(keys)
	cols := make([]InferredColumn, len(keys))
	for i, k := range keys {
		t, note := s.stats[i].infer(s.rows)
		_, col := mapping.SplitKey(k)
		cols[i] = InferredColumn{
			Column:  mapping.Column{From: k, To: names[i], Type: t},
			NonNull: s.stats[i].nonNull,
			Renamed: names[i] != mapping.SnakeCase(col),
			Note:    note,
		}
	}
	return cols, nil
}
