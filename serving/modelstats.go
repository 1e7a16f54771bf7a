package serving

import (
	"sync/atomic"
	"time"
)

// versionStats count what a loaded model version did, for the V2 statistics
// extension (GET /v2/models/{m}/stats): requests served and failed, and the
// time spent in each stage, from its load on. Every field is an atomic: the
// pipeline adds to them without a lock.
type versionStats struct {
	success, fail              stageStat // whole requests, from arrival to answer
	computeInput, computeInfer stageStat
	computeOutput              stageStat
	executions                 atomic.Int64
	lastInference              atomic.Int64 // Unix milliseconds; 0 before the first
}

// stageStat is a count and the nanoseconds those took in all.
type stageStat struct{ count, ns atomic.Int64 }

func (s *stageStat) add(d time.Duration) {
	s.count.Add(1)
	s.ns.Add(int64(d))
}

// statDuration is a stageStat as the statistics extension writes it.
type statDuration struct {
	Count int64 `json:"count"`
	NS    int64 `json:"ns"`
}

func (s *stageStat) read() statDuration { return statDuration{Count: s.count.Load(), NS: s.ns.Load()} }

// inferenceStats are a version's counts in the extension's shape. Without a
// request queue (no dynamic batching), queue counts every request at 0 ns.
type inferenceStats struct {
	Success       statDuration `json:"success"`
	Fail          statDuration `json:"fail"`
	Queue         statDuration `json:"queue"`
	ComputeInput  statDuration `json:"compute_input"`
	ComputeInfer  statDuration `json:"compute_infer"`
	ComputeOutput statDuration `json:"compute_output"`
	CacheHit      statDuration `json:"cache_hit"`
	CacheMiss     statDuration `json:"cache_miss"`
}

// modelStats are one version's statistics.
type modelStats struct {
	Name           string         `json:"name"`
	Version        string         `json:"version"`
	LastInference  int64          `json:"last_inference"`
	InferenceCount int64          `json:"inference_count"`
	ExecutionCount int64          `json:"execution_count"`
	InferenceStats inferenceStats `json:"inference_stats"`
	BatchStats     []struct{}     `json:"batch_stats"`
}

func (v *versionStats) read() (inferenceStats, int64, int64, int64) {
	st := inferenceStats{
		Success:       v.success.read(),
		Fail:          v.fail.read(),
		ComputeInput:  v.computeInput.read(),
		ComputeInfer:  v.computeInfer.read(),
		ComputeOutput: v.computeOutput.read(),
	}
	st.Queue.Count = st.Success.Count + st.Fail.Count
	return st, v.success.count.Load(), v.executions.Load(), v.lastInference.Load()
}
