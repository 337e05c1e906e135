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

// ShardIndexEnv is the variable `--shard auto/n` takes the shard index
// from: Kubernetes sets it in every pod of an Indexed Job (completionMode:
// Indexed) to the pod's completion index, 0 to completions-1.
const ShardIndexEnv = "JOB_COMPLETION_INDEX"

// ParseShard parses "i/n" with 0 <= i < n, or "auto/n", whose i is the
// value of ShardIndexEnv as lookup finds it (os.LookupEnv in the command).
// An auto index that is unset, not an integer, or not below n is an error
// saying so: a pod must never guess its share.
func ParseShard(s string, lookup func(string) (string, bool)) (Shard, error) {
	a, b, ok := strings.Cut(s, "/")
	n, err := strconv.Atoi(b)
	if !ok || err != nil || n < 1 {
		return Shard{}, shardSyntax(s)
	}
	if a != "auto" {
		i, err := strconv.Atoi(a)
		if err != nil || i < 0 || i >= n {
			return Shard{}, shardSyntax(s)
		}
		return Shard{I: i, N: n}, nil
	}
	v, set := lookup(ShardIndexEnv)
	if !set || v == "" {
		return Shard{}, fmt.Errorf("--shard %s: %s is not set: auto takes the shard index from it, as Kubernetes sets it in the pods of an Indexed Job (completionMode: Indexed); elsewhere write i/n, e.g. 0/%d", s, ShardIndexEnv, n)
	}
	i, err := strconv.Atoi(v)
	if err != nil || i < 0 {
		return Shard{}, fmt.Errorf("--shard %s: %s=%q is not a shard index: want an integer from 0 to %d", s, ShardIndexEnv, v, n-1)
	}
	if i >= n {
		return Shard{}, fmt.Errorf("--shard %s: %s=%d is not below %d: give the Indexed Job as many completions as shards (completions: %d)", s, ShardIndexEnv, i, n, n)
	}
	return Shard{I: i, N: n}, nil
}

func shardSyntax(s string) error {
	return fmt.Errorf("--shard %q: write i/n with 0 <= i < n, e.g. 0/4, or auto/n to take i from $%s (a Kubernetes Indexed Job of n completions)", s, ShardIndexEnv)
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
