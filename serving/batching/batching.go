// Package batching fuses concurrent runs of one model version into one
// ONNX Runtime call (dynamic batching). A Batcher takes each caller's bound
// inputs, whose first dimension is the caller's rows, gathers callers until
// their rows reach the maximum batch size or the first of them has waited
// the maximum queue delay, concatenates each input along its first
// dimension, runs the model once, and splits each output back along its
// first dimension by each caller's rows.
//
// A batch holds requests whose inputs agree on everything but their first
// dimension: a request of another shape forms a batch of its own, never an
// error. A request with more rows than the maximum runs alone. When an
// output cannot be split by rows (its first dimension is not the batch's),
// the Batcher answers each request of that batch alone and runs every later
// request alone too. When the fused run fails because of its inputs
// (onnx.ErrInput), each request is run alone, so that one caller's bad rows
// fail that caller only.
package batching

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mlgate/mlgate/internal/errkind"
	"github.com/mlgate/mlgate/serving/onnx"
)

// RunFunc runs the model once, as onnx.Session.Run does: inputs in the
// model's order, every output in the model's order. It must be safe to call
// from several goroutines at once.
type RunFunc func(inputs []onnx.Tensor) ([]onnx.Tensor, error)

// Options size a Batcher.
type Options struct {
	// MaxBatchSize is the most rows one fused run takes; at least 2.
	MaxBatchSize int
	// MaxQueueDelay is the longest a request waits for others to join it;
	// greater than 0.
	MaxQueueDelay time.Duration
	// Runners is how many batches run at once; 0 means 1. While every
	// runner is busy, ready batches keep taking requests up to
	// MaxBatchSize, so a busy model gets fuller batches.
	Runners int
	// Log, when set, hears once that the model's outputs cannot be split
	// by rows and that the Batcher runs each request alone from then on.
	Log *slog.Logger
}

// Stats says how a request was run.
type Stats struct {
	// Queued is how long the request waited for its batch to start.
	Queued time.Duration
	// Rows is the number of rows of the run that answered the request.
	Rows int
	// Reports is true for one request of each run, the one that should
	// report the run's Rows (to a histogram of batch sizes, say); a run's
	// other requests have it false.
	Reports bool
}

// ErrClosed is returned by Do once the Batcher is closed. It is of kind
// errkind.Unavailable.
var ErrClosed = errkind.New(errkind.Unavailable, "the model version is being unloaded")

// Batcher fuses concurrent runs of one model version. It is safe for
// concurrent use. Its collector and runner goroutines stop at Close.
type Batcher struct {
	run     RunFunc
	opts    Options
	queue   chan *request // unbuffered: a request sent is one the collector holds
	batches chan *batch   // ready batches, to the runners
	quit    chan struct{}
	wg      sync.WaitGroup
	closing sync.Once
	// waiting counts the requests the collector holds.
	waiting atomic.Int64
	// alone says the model's outputs cannot be split by rows: every
	// request runs alone, in its caller's goroutine.
	alone atomic.Bool
}

// New returns a Batcher of run, its goroutines started. opts.MaxBatchSize
// must be at least 2 and opts.MaxQueueDelay greater than 0.
func New(run RunFunc, opts Options) (*Batcher, error) {
	if opts.MaxBatchSize < 2 {
		return nil, fmt.Errorf("batching: max batch size %d, want at least 2", opts.MaxBatchSize)
	}
	if opts.MaxQueueDelay <= 0 {
		return nil, fmt.Errorf("batching: max queue delay %v, want more than 0", opts.MaxQueueDelay)
	}
	opts.Runners = max(opts.Runners, 1)
	b := &Batcher{
		run:     run,
		opts:    opts,
		queue:   make(chan *request),
		batches: make(chan *batch),
		quit:    make(chan struct{}),
	}
	b.wg.Add(1 + opts.Runners)
	go b.collect()
	for range opts.Runners {
		go b.runner()
	}
	return b, nil
}

// request states: a caller's request is pending until a runner takes it,
// or until its caller gives up on it.
const (
	pending int32 = iota
	taken
	abandoned
)

// request is one caller's run: its inputs, then its answer.
type request struct {
	inputs []onnx.Tensor
	rows   int64
	start  time.Time
	state  atomic.Int32
	done   chan struct{} // receives once the answer is set; buffered
	out    []onnx.Tensor
	stats  Stats
	err    error
}

var requests = sync.Pool{New: func() any { return &request{done: make(chan struct{}, 1)} }}

// Do runs the model on inputs, fused with other callers' when it can, and
// returns its outputs, how it was run, and the run's error (see RunFunc).
// Every input's first dimension is the request's rows. It waits at most
// MaxQueueDelay for others to join before its batch is ready, then for a
// runner to be free.
//
// When ctx ends first, Do returns ctx.Err() at once; its rows are not run,
// or, when their batch has started, their answer is dropped. Do never writes
// inputs, but after such an early return it may still read them until their
// batch has run: a caller must not reuse their memory then.
//
// Do returns ErrClosed once the Batcher is closed.
func (b *Batcher) Do(ctx context.Context, inputs []onnx.Tensor) ([]onnx.Tensor, Stats, error) {
	rows, ok := rowsOf(inputs)
	if !ok || rows > int64(b.opts.MaxBatchSize) || b.alone.Load() {
		return b.runAlone(ctx, inputs, rows)
	}
	if err := ctx.Err(); err != nil {
		return nil, Stats{}, err
	}
	r := requests.Get().(*request)
	r.inputs, r.rows, r.start = inputs, rows, time.Now()
	r.state.Store(pending)
	select {
	case b.queue <- r:
	case <-ctx.Done():
		r.inputs = nil
		requests.Put(r)
		return nil, Stats{}, ctx.Err()
	case <-b.quit:
		r.inputs = nil
		requests.Put(r)
		return nil, Stats{}, ErrClosed
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		// A request taken is being run: it is left to the runner, which
		// answers into it, and to the collector of garbage.
		r.state.CompareAndSwap(pending, abandoned)
		return nil, Stats{}, ctx.Err()
	}
	out, stats, err := r.out, r.stats, r.err
	*r = request{done: r.done}
	requests.Put(r)
	return out, stats, err
}

// runAlone runs a request that cannot join a batch in its caller's
// goroutine.
func (b *Batcher) runAlone(ctx context.Context, inputs []onnx.Tensor, rows int64) ([]onnx.Tensor, Stats, error) {
	if err := ctx.Err(); err != nil {
		return nil, Stats{}, err
	}
	select {
	case <-b.quit:
		return nil, Stats{}, ErrClosed
	default:
	}
	out, err := b.run(inputs)
	return out, Stats{Rows: int(max(rows, 0)), Reports: true}, err
}

// rowsOf returns the rows of inputs: their first dimension, which each of
// them must have and agree on, at least 1. ok is false when they cannot
// join a batch: they disagree on the rows, or an input's data is not what
// its type and shape say (the run reports that).
func rowsOf(inputs []onnx.Tensor) (rows int64, ok bool) {
	if len(inputs) == 0 || len(inputs[0].Shape) == 0 {
		return 0, false
	}
	rows = inputs[0].Shape[0]
	for _, t := range inputs {
		if len(t.Shape) == 0 || t.Shape[0] != rows {
			return rows, false
		}
		if n, ok := length(t); !ok || int64(n) != onnx.Elements(t.Shape) {
			return rows, false
		}
	}
	return rows, rows >= 1
}

// Close stops the Batcher: requests waiting for a batch get ErrClosed, and
// Close returns once the batches already running have been answered. Do
// called after Close returns ErrClosed.
func (b *Batcher) Close() {
	b.closing.Do(func() { close(b.quit) })
	b.wg.Wait()
}

// batch is requests that run together: they agree on every input's type
// and on every dimension but the first.
type batch struct {
	reqs []*request
	rows int64
	// due is when the first request has waited MaxQueueDelay.
	due time.Time
	// full says no more requests join: the next would take the batch over
	// MaxBatchSize.
	full bool
}

var batches = sync.Pool{New: func() any { return new(batch) }}

// fits reports whether r's inputs agree with the batch's but for the rows.
func (bt *batch) fits(r *request) bool {
	head := bt.reqs[0].inputs
	if len(head) != len(r.inputs) {
		return false
	}
	for i, t := range r.inputs {
		h := head[i]
		if t.Type != h.Type || len(t.Shape) != len(h.Shape) {
			return false
		}
		for d := 1; d < len(t.Shape); d++ {
			if t.Shape[d] != h.Shape[d] {
				return false
			}
		}
	}
	return true
}

// collect is the collector: it gathers requests into forming batches and
// hands each to a runner once it is full or due.
func (b *Batcher) collect() {
	defer b.wg.Done()
	defer close(b.batches)
	var forming []*batch // oldest first
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		now := time.Now()
		var send chan *batch
		var ready *batch
		var wake time.Time
		for _, bt := range forming {
			if bt.full || !now.Before(bt.due) {
				if ready == nil {
					ready = bt
				}
			} else if wake.IsZero() || bt.due.Before(wake) {
				wake = bt.due
			}
		}
		var readyReqs int64
		if ready != nil {
			send, readyReqs = b.batches, int64(len(ready.reqs))
		}
		var tick <-chan time.Time
		if !wake.IsZero() {
			timer.Reset(wake.Sub(now))
			tick = timer.C
		}
		select {
		case r := <-b.queue:
			b.waiting.Add(1)
			forming = b.add(forming, r)
		case send <- ready: // a runner has ready now
			b.waiting.Add(-readyReqs)
			forming = remove(forming, ready)
		case <-tick:
		case <-b.quit:
			for _, bt := range forming {
				fail(bt, ErrClosed)
			}
			return
		}
		timer.Stop()
	}
}

// add puts r into the first forming batch it fits, or into a new one.
func (b *Batcher) add(forming []*batch, r *request) []*batch {
	max := int64(b.opts.MaxBatchSize)
	for _, bt := range forming {
		if bt.full || !bt.fits(r) {
			continue
		}
		if bt.rows+r.rows >= max {
			// Before r fills bt, or finds it too full, the rows of the
			// requests given up on make room.
			b.waiting.Add(-int64(bt.prune()))
		}
		if len(bt.reqs) == 0 {
			// Every request of bt was given up: r starts it anew.
			b.start(bt, r)
			return forming
		}
		if bt.rows+r.rows > max {
			bt.full = true
			continue
		}
		bt.reqs = append(bt.reqs, r)
		bt.rows += r.rows
		bt.full = bt.rows == max
		return forming
	}
	bt := batches.Get().(*batch)
	b.start(bt, r)
	return append(forming, bt)
}

// start makes r the first request of bt.
func (b *Batcher) start(bt *batch, r *request) {
	bt.reqs = append(bt.reqs[:0], r)
	bt.rows, bt.due, bt.full = r.rows, r.start.Add(b.opts.MaxQueueDelay), r.rows == int64(b.opts.MaxBatchSize)
}

// prune drops the requests of bt whose callers gave up on them, so that
// their rows leave room for others, and returns how many it dropped.
func (bt *batch) prune() int {
	kept := bt.reqs[:0]
	bt.rows = 0
	for _, r := range bt.reqs {
		if r.state.Load() != abandoned {
			kept = append(kept, r)
			bt.rows += r.rows
		}
	}
	dropped := len(bt.reqs) - len(kept)
	clear(bt.reqs[len(kept):])
	bt.reqs = kept
	return dropped
}

func remove(forming []*batch, bt *batch) []*batch {
	for i, f := range forming {
		if f == bt {
			copy(forming[i:], forming[i+1:])
			forming[len(forming)-1] = nil
			return forming[:len(forming)-1]
		}
	}
	return forming
}

// fail answers every pending request of bt with err.
func fail(bt *batch, err error) {
	for _, r := range bt.reqs {
		if r.state.CompareAndSwap(pending, taken) {
			r.err = err
			r.done <- struct{}{}
		}
	}
}

// runner runs the batches the collector hands it, with buffers of its own
// for the fused inputs.
func (b *Batcher) runner() {
	defer b.wg.Done()
	var f fuser
	for bt := range b.batches {
		b.runBatch(&f, bt)
		clear(bt.reqs)
		bt.reqs = bt.reqs[:0]
		batches.Put(bt)
	}
}

// runBatch runs bt's requests that are still pending, fused, and answers
// each of them.
func (b *Batcher) runBatch(f *fuser, bt *batch) {
	now := time.Now()
	reqs := bt.reqs[:0]
	var rows int64
	for _, r := range bt.reqs {
		if r.state.CompareAndSwap(pending, taken) {
			r.stats.Queued = now.Sub(r.start)
			reqs = append(reqs, r)
			rows += r.rows
		}
	}
	switch len(reqs) {
	case 0:
		return
	case 1:
		b.answerAlone(reqs[0])
		return
	}
	out, err := b.run(f.fuse(reqs, rows))
	f.release()
	if err != nil {
		if errors.Is(err, onnx.ErrInput) {
			// One request's rows may have caused it: each runs alone, so
			// that the others are answered.
			for _, r := range reqs {
				b.answerAlone(r)
			}
			return
		}
		for _, r := range reqs {
			r.err = err
			r.stats.Rows = int(rows)
		}
		reqs[0].stats.Reports = true
		answer(reqs)
		return
	}
	if bad := unsplittable(out, rows); bad != nil {
		if !b.alone.Swap(true) && b.opts.Log != nil {
			b.opts.Log.Warn("dynamic batching off: an output does not follow the batch's rows, so every request runs alone",
				"output", bad.Name, "shape", bad.Shape, "rows", rows)
		}
		for _, r := range reqs {
			b.answerAlone(r)
		}
		return
	}
	split(reqs, out)
	for _, r := range reqs {
		r.stats.Rows = int(rows)
	}
	reqs[0].stats.Reports = true
	answer(reqs)
}

// answerAlone runs r by itself and answers it.
func (b *Batcher) answerAlone(r *request) {
	r.out, r.err = b.run(r.inputs)
	r.stats.Rows, r.stats.Reports = int(r.rows), true
	r.inputs = nil
	r.done <- struct{}{}
}

func answer(reqs []*request) {
	for _, r := range reqs {
		r.inputs = nil
		r.done <- struct{}{}
	}
}

// unsplittable returns the first output that cannot be split into rows
// rows, or nil.
func unsplittable(out []onnx.Tensor, rows int64) *onnx.Tensor {
	for i := range out {
		t := &out[i]
		if t.Type == onnx.JSON {
			if m, ok := t.Data.([]onnx.Map); !ok || int64(len(m)) != rows {
				return t
			}
			continue
		}
		if len(t.Shape) == 0 || t.Shape[0] != rows || onnx.Elements(t.Shape) < 0 {
			return t
		}
	}
	return nil
}

// split gives each request its rows of every output: views of out's data,
// which the requests share without overlapping.
func split(reqs []*request, out []onnx.Tensor) {
	dims := 0
	for _, t := range out {
		dims += len(t.Shape)
	}
	for _, r := range reqs {
		r.out = make([]onnx.Tensor, len(out))
		shapes := make([]int64, dims) // every output's shape, in one allocation
		for i, t := range out {
			shape := shapes[:len(t.Shape):len(t.Shape)]
			shapes = shapes[len(t.Shape):]
			copy(shape, t.Shape)
			shape[0] = r.rows
			r.out[i] = onnx.Tensor{Name: t.Name, Type: t.Type, Shape: shape}
		}
	}
	for i, t := range out {
		per := int64(1)
		if t.Type != onnx.JSON {
			per = onnx.Elements(t.Shape[1:])
		}
		var start int64
		for _, r := range reqs {
			end := start + r.rows*per
			r.out[i].Data = slice(t.Data, start, end)
			start = end
		}
	}
}
