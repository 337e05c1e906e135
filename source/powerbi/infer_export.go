package powerbi

import (
	"bytes"
	"errors"

	"github.com/pbicopy/pbicopy/mapping"
)

// InferredColumn is a column inference chose, with what the data engineer
// should review about it.
type InferredColumn struct {
	mapping.Column
	// NonNull is the number of rows where the key had a value; with none,
	// Type is the zero Type: no type could be inferred.
	NonNull int
	// Renamed is set when the column's name is not the plain snake_case of
	// the key's column part, because another key's name collided with it.
	Renamed bool
	// Note says why the type deserves a look ("" when nothing does): the
	// values were all at midnight, had at most 4 decimals, mixed kinds, or
	// there were none.
	Note string
}

// Sampler is a rowReceiver that observes rows the way an Inferrer does,
// without keeping them or building batches, so that a query's first
// response can be turned into a mapping (pbicopy infer). Columns applies
// the same rules as an Inferrer: the same names, types and notes.
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
		s.stats[k].observe(value, s.rows+1)
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
// came. A key null in every row is returned with the zero Type and a note,
// for the caller to ask for its type. It returns ErrNoRowsToInfer when no
// row was observed.
func (s *Sampler) Columns() ([]InferredColumn, error) {
	if s.rows == 0 || len(s.rawKeys) == 0 {
		return nil, ErrNoRowsToInfer
	}
	cols, err := inferColumns(s.rawKeys, s.stats, s.rows)
	var null *AllNullError
	if errors.As(err, &null) {
		err = nil
	}
	return cols, err
}
