package pipeline

import (
	"context"

	"github.com/pbicopy/pbicopy/jobfile"
)

// RunPlan is what a run of a job would do, worked out without calling any
// service.
type RunPlan struct {
	Job        string
	Partitions []PlannedPartition
	Skipped    int  // partitions --resume would skip
	Paged      bool // whether partitions may take more than one request
	// MinRequests is the fewest executeQueries requests the run makes:
	// one per partition to run (paged partitions make one per page).
	MinRequests int
	// Watermark is the watermark an incremental job would read from (New
	// and Advanced unset); nil for other jobs.
	Watermark *WatermarkResult
}

// PlannedPartition is one partition of a RunPlan.
type PlannedPartition struct {
	Key        string
	FirstQuery string   // the query, or the first page's query
	Outputs    []string // output files and tables
	Done       bool     // recorded as done: --resume skips it
}

// Plan works out the partitions, queries and outputs of a run of job with
// the runner's parameters, range, shard and resume settings.
func (r *Runner) Plan(job *jobfile.Job) (*RunPlan, error) {
	parts, err := r.partitions(job)
	if err != nil {
		return nil, err
	}
	var st *stateFile
	if job.Partition != nil && r.Resume {
		if st, err = r.openState(context.Background(), job, r.Shard, true); err != nil {
			return nil, err
		}
	}
	rp := &RunPlan{Job: job.Name}
	if job.Incremental != nil {
		// The state is read, not written: a plan changes nothing.
		ws, err := r.openWatermark(context.Background(), job)
		if err != nil {
			return nil, err
		}
		from, _, wr, err := r.watermarkFrom(job, ws, parts[0])
		if err != nil {
			return nil, err
		}
		params := make(map[string]any, len(parts[0].Params))
		for k, v := range parts[0].Params {
			params[k] = v
		}
		params[job.Incremental.Param] = from
		parts[0].Params = params
		rp.Watermark = wr
	}
	columns := 0
	if job.Mapping != nil {
		columns = len(job.Mapping.Columns)
	}
	if job.Partition != nil {
		if _, err := checkPartitionOutputs(job, parts); err != nil {
			return nil, err
		}
	}
	pb := job.Source.PowerBI
	rp.Paged = pb != nil && pb.Paging != nil
	for _, p := range parts {
		fp, err := fingerprint(job, p)
		if err != nil {
			return nil, err
		}
		pp := PlannedPartition{Key: p.Key, Done: st.isDone(p.Key, fp)}
		sinks, err := renderPaths(job, p)
		if err != nil {
			return nil, err
		}
		for _, s := range sinks {
			pp.Outputs = append(pp.Outputs, s.target.Describe())
		}
		switch {
		case pb == nil:
			pp.FirstQuery = "replay " + job.Source.File
		default:
			text, err := job.RenderSource(p.Params)
			if err != nil {
				return nil, err
			}
			pp.FirstQuery = pb.FirstQuery(text, columns)
		}
		if pp.Done {
			rp.Skipped++
		} else if pb != nil {
			rp.MinRequests++
		}
		rp.Partitions = append(rp.Partitions, pp)
	}
	return rp, nil
}
