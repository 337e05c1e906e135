package pipeline

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pbicopy/pbicopy/jobfile"
)

// Shard selects a deterministic share of the partitions: those whose index
// modulo N is I.
type Shard struct{ I, N int }

// ParseShard parses "i/n" with 0 <= i < n.
func ParseShard(s string) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return Shard{}, fmt.Errorf("--shard %q: write i/n with 0 <= i < n, e.g. 0/4 (Kubernetes: $JOB_COMPLETION_INDEX/<completions>)", s)
	}
	return Shard{I: i, N: n}, nil
}

// Select keeps the shard's share of parts.
func (s Shard) Select(parts []jobfile.Partition) []jobfile.Partition {
	if s.N <= 1 {
		return parts
	}
	var out []jobfile.Partition
	for _, p := range parts {
		if p.Index%s.N == s.I {
			out = append(out, p)
		}
	}
	return out
}
