package batching_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/errkind"
	"github.com/mlgate/mlgate/serving/batching"
	"github.com/mlgate/mlgate/serving/onnx"
)

// model is a fake model: x FP32 [n,k] → y FP32 [n,k] = 2x, and sums, one
// map a row holding the row's sum. A row whose first value is negative
// fails the run as the input's fault; one whose first value is 13 fails it
// as the model's. It records the rows and shape of every run.
type model struct {
	mu   sync.Mutex
	runs [][]int64 // the shape of x in each run
	// gate, when set, holds every run until it is closed.
	gate chan struct{}
	// collapse makes y one row, the sum of all: an output that does not
	// follow the batch.
	collapse bool
}

func (m *model) run(inputs []onnx.Tensor) ([]onnx.Tensor, error) {
	x := inputs[0]
	m.mu.Lock()
	m.runs = append(m.runs, slices.Clone(x.Shape))
	m.mu.Unlock()
	if m.gate != nil {
		<-m.gate
	}
	data := x.Data.([]float32)
	if int64(len(data)) != onnx.Elements(x.Shape) {
		return nil, fmt.Errorf("x has %d values for the shape %v", len(data), x.Shape)
	}
	k := int(x.Shape[1])
	for r := 0; r < len(data)/k; r++ {
		switch data[r*k] {
		case -1:
			return nil, errkind.New(onnx.ErrInput, "row %d: index out of range", r)
		case 13:
			return nil, errors.New("the model broke")
		}
	}
	if m.collapse {
		sum := float32(0)
		for _, v := range data {
			sum += v
		}
		return []onnx.Tensor{{Name: "y", Type: onnx.FP32, Shape: []int64{1, 1}, Data: []float32{sum}}}, nil
	}
	y := make([]float32, len(data))
	sums := make([]onnx.Map, len(data)/k)
	for i, v := range data {
		y[i] = 2 * v
		sums[i/k].Values = append(sums[i/k].Values, 0)
		sums[i/k].Values[0] += v
	}
	for i := range sums {
		sums[i].Keys = []string{"sum"}
		sums[i].Values = sums[i].Values[:1]
	}
	return []onnx.Tensor{
		{Name: "y", Type: onnx.FP32, Shape: slices.Clone(x.Shape), Data: y},
		{Name: "sums", Type: onnx.JSON, Shape: []int64{int64(len(sums))}, Data: sums},
	}, nil
}

func (m *model) batchRows() []int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int64
	for _, s := range m.runs {
		out = append(out, s[0])
	}
	slices.Sort(out)
	return out
}

// rows returns n rows of k values, each row's values first, first+1, ...
func rows(n, k int, first float32) onnx.Tensor {
	d := make([]float32, n*k)
	for i := range d {
		d[i] = first + float32(i)
	}
	return onnx.Tensor{Name: "x", Type: onnx.FP32, Shape: []int64{int64(n), int64(k)}, Data: d}
}

// checkAnswer checks the outputs of model for input x.
func checkAnswer(t *testing.T, x onnx.Tensor, out []onnx.Tensor) {
	t.Helper()
	if len(out) != 2 {
		t.Fatalf("%d outputs, want 2", len(out))
	}
	in := x.Data.([]float32)
	y := out[0].Data.([]float32)
	if !slices.Equal(out[0].Shape, x.Shape) || len(y) != len(in) {
		t.Fatalf("y has shape %v and %d values; want %v", out[0].Shape, len(y), x.Shape)
	}
	for i, v := range in {
		if y[i] != 2*v {
			t.Fatalf("y = %v for x = %v", y, in)
		}
	}
	k := int(x.Shape[1])
	sums := out[1].Data.([]onnx.Map)
	if len(sums) != int(x.Shape[0]) || out[1].Shape[0] != x.Shape[0] {
		t.Fatalf("sums = %v (shape %v) for %d rows", sums, out[1].Shape, x.Shape[0])
	}
	for r, m := range sums {
		var want float32
		for _, v := range in[r*k : (r+1)*k] {
			want += v
		}
		if m.Values[0] != want {
			t.Fatalf("sum of row %d = %v, want %v", r, m.Values[0], want)
		}
	}
}

func newBatcher(t *testing.T, m *model, opts batching.Options) *batching.Batcher {
	t.Helper()
	b, err := batching.New(m.run, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// call is one caller of a concurrent test: its input and what Do gave it.
type call struct {
	x     onnx.Tensor
	out   []onnx.Tensor
	stats batching.Stats
	err   error
}

// doAll calls Do with every input at once and waits for the answers.
func doAll(b *batching.Batcher, inputs []onnx.Tensor) []call {
	calls := make([]call, len(inputs))
	var wg sync.WaitGroup
	for i, x := range inputs {
		calls[i].x = x
		wg.Go(func() {
			calls[i].out, calls[i].stats, calls[i].err = b.Do(context.Background(), []onnx.Tensor{x})
		})
	}
	wg.Wait()
	return calls
}

// slow is a queue delay long enough that callers started together all
// arrive within it, even on a loaded machine under the race detector.
const slow = 200 * time.Millisecond

func TestBatcher(t *testing.T) {
	ones := func(n, k int) []onnx.Tensor {
		out := make([]onnx.Tensor, n)
		for i := range out {
			out[i] = rows(1, k, float32(10*i))
		}
		return out
	}
	tests := []struct {
		name   string
		opts   batching.Options
		inputs []onnx.Tensor
		// runs is the rows of every run, ascending.
		runs []int64
	}{
		{"full batch runs at once", batching.Options{MaxBatchSize: 8, MaxQueueDelay: time.Hour}, ones(8, 3), []int64{8}},
		{"callers of several rows", batching.Options{MaxBatchSize: 6, MaxQueueDelay: time.Hour},
			[]onnx.Tensor{rows(1, 2, 0), rows(2, 2, 10), rows(3, 2, 20)}, []int64{6}},
		{"max batch size splits", batching.Options{MaxBatchSize: 4, MaxQueueDelay: slow}, ones(10, 2), []int64{2, 4, 4}},
		{"partial batch after the delay", batching.Options{MaxBatchSize: 32, MaxQueueDelay: slow}, ones(3, 2), []int64{3}},
		{"too many rows run alone", batching.Options{MaxBatchSize: 4, MaxQueueDelay: time.Hour}, []onnx.Tensor{rows(5, 2, 0)}, []int64{5}},
		{"shapes apart", batching.Options{MaxBatchSize: 4, MaxQueueDelay: time.Hour},
			append(ones(4, 2), ones(4, 3)...), []int64{4, 4}},
		{"shapes apart, due", batching.Options{MaxBatchSize: 8, MaxQueueDelay: slow},
			append(ones(2, 2), ones(3, 5)...), []int64{2, 3}},
		{"two runners", batching.Options{MaxBatchSize: 2, MaxQueueDelay: time.Hour, Runners: 2}, ones(8, 1), []int64{2, 2, 2, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := &model{}
			b := newBatcher(t, m, tt.opts)
			for _, c := range doAll(b, tt.inputs) {
				if c.err != nil {
					t.Fatalf("Do: %v", c.err)
				}
				checkAnswer(t, c.x, c.out)
				if c.stats.Rows < int(c.x.Shape[0]) {
					t.Errorf("Stats.Rows = %d for a request of %d rows", c.stats.Rows, c.x.Shape[0])
				}
			}
			if got := m.batchRows(); !slices.Equal(got, tt.runs) {
				t.Errorf("runs of %v rows; want %v", got, tt.runs)
			}
		})
	}
}

// TestStatsReportEachRunOnce: of the requests a run answers, one reports
// it, and the reported rows add up to the rows run.
func TestStatsReportEachRunOnce(t *testing.T) {
	m := &model{}
	b := newBatcher(t, m, batching.Options{MaxBatchSize: 4, MaxQueueDelay: 20 * time.Millisecond})
	inputs := make([]onnx.Tensor, 11)
	for i := range inputs {
		inputs[i] = rows(1, 2, float32(i))
	}
	total := 0
	for _, c := range doAll(b, inputs) {
		if c.stats.Reports {
			total += c.stats.Rows
		}
		if c.stats.Queued < 0 || c.stats.Queued > time.Second {
			t.Errorf("Stats.Queued = %v", c.stats.Queued)
		}
	}
	if total != 11 {
		t.Errorf("reported runs add up to %d rows; want 11", total)
	}
}

// TestDelayBound: a lone request waits for company no longer than the
// queue delay.
func TestDelayBound(t *testing.T) {
	const delay = 30 * time.Millisecond
	b := newBatcher(t, &model{}, batching.Options{MaxBatchSize: 32, MaxQueueDelay: delay})
	start := time.Now()
	out, stats, err := b.Do(context.Background(), []onnx.Tensor{rows(1, 2, 0)})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	checkAnswer(t, rows(1, 2, 0), out)
	if took < delay || stats.Queued < delay {
		t.Errorf("answered after %v (queued %v); a lone request waits the delay, %v", took, stats.Queued, delay)
	}
	if stats.Queued > delay+time.Second {
		t.Errorf("queued %v; want about %v", stats.Queued, delay)
	}
}

func TestInputErrorIsolated(t *testing.T) {
	m := &model{}
	b := newBatcher(t, m, batching.Options{MaxBatchSize: 4, MaxQueueDelay: time.Hour})
	bad := onnx.Tensor{Name: "x", Type: onnx.FP32, Shape: []int64{1, 2}, Data: []float32{-1, 0}}
	calls := doAll(b, []onnx.Tensor{rows(1, 2, 0), bad, rows(1, 2, 10), rows(1, 2, 20)})
	for _, c := range calls {
		if c.x.Data.([]float32)[0] == -1 {
			if !errors.Is(c.err, onnx.ErrInput) {
				t.Errorf("the bad caller got %v; want ErrInput", c.err)
			}
			continue
		}
		if c.err != nil {
			t.Fatalf("a good caller got %v", c.err)
		}
		checkAnswer(t, c.x, c.out)
	}
	// One fused run, then each of the four alone.
	if got := m.batchRows(); !slices.Equal(got, []int64{1, 1, 1, 1, 4}) {
		t.Errorf("runs of %v rows", got)
	}
}

func TestModelErrorGoesToAll(t *testing.T) {
	m := &model{}
	b := newBatcher(t, m, batching.Options{MaxBatchSize: 3, MaxQueueDelay: time.Hour})
	broken := onnx.Tensor{Name: "x", Type: onnx.FP32, Shape: []int64{1, 2}, Data: []float32{13, 0}}
	for _, c := range doAll(b, []onnx.Tensor{rows(1, 2, 0), broken, rows(1, 2, 10)}) {
		if c.err == nil || errors.Is(c.err, onnx.ErrInput) {
			t.Errorf("Do = %v; want the model's error", c.err)
		}
	}
	if got := m.batchRows(); !slices.Equal(got, []int64{3}) {
		t.Errorf("runs of %v rows; want one of 3", got)
	}
}

// TestUnsplittableOutput: a model whose output does not follow the batch
// answers each request alone, then runs every request alone.
func TestUnsplittableOutput(t *testing.T) {
	m := &model{collapse: true}
	b := newBatcher(t, m, batching.Options{MaxBatchSize: 3, MaxQueueDelay: time.Hour})
	for _, c := range doAll(b, []onnx.Tensor{rows(1, 2, 0), rows(1, 2, 10), rows(1, 2, 20)}) {
		if c.err != nil {
			t.Fatal(c.err)
		}
		x := c.x.Data.([]float32)
		if got := c.out[0].Data.([]float32); len(got) != 1 || got[0] != x[0]+x[1] {
			t.Errorf("y = %v for %v; want its own sum", got, x)
		}
	}
	if got := m.batchRows(); !slices.Equal(got, []int64{1, 1, 1, 3}) {
		t.Errorf("runs of %v rows", got)
	}
	// Later requests do not wait for company (the delay is an hour).
	for _, c := range doAll(b, []onnx.Tensor{rows(1, 2, 0), rows(1, 2, 10), rows(1, 2, 20)}) {
		if c.err != nil {
			t.Fatal(c.err)
		}
	}
	if got := m.batchRows(); !slices.Equal(got, []int64{1, 1, 1, 1, 1, 1, 3}) {
		t.Errorf("runs of %v rows", got)
	}
}

func TestBytesAndMismatchedData(t *testing.T) {
	var mu sync.Mutex
	var runs []int64
	echo := func(inputs []onnx.Tensor) ([]onnx.Tensor, error) {
		mu.Lock()
		runs = append(runs, inputs[0].Shape[0])
		mu.Unlock()
		s, ok := inputs[0].Data.([]string)
		if !ok {
			return nil, fmt.Errorf("input s: %T", inputs[0].Data)
		}
		out := make([]string, len(s))
		for i, v := range s {
			out[i] = v + "!"
		}
		return []onnx.Tensor{{Name: "t", Type: onnx.Bytes, Shape: slices.Clone(inputs[0].Shape), Data: out}}, nil
	}
	b, err := batching.New(echo, batching.Options{MaxBatchSize: 3, MaxQueueDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	words := []string{"cat", "dog", "bird"}
	var wg sync.WaitGroup
	for i, w := range words {
		wg.Go(func() {
			in := onnx.Tensor{Name: "s", Type: onnx.Bytes, Shape: []int64{1, 1}, Data: []string{w}}
			out, _, err := b.Do(context.Background(), []onnx.Tensor{in})
			if err != nil {
				t.Errorf("caller %d: %v", i, err)
				return
			}
			if got := out[0].Data.([]string); len(got) != 1 || got[0] != w+"!" {
				t.Errorf("caller %d got %v", i, got)
			}
		})
	}
	wg.Wait()
	// Data that is not what its type says runs alone, so that the run
	// reports it.
	_, _, err = b.Do(context.Background(), []onnx.Tensor{{Name: "s", Type: onnx.Bytes, Shape: []int64{1, 1}, Data: []float32{1}}})
	if err == nil {
		t.Error("Do of FP32 data typed BYTES succeeded")
	}
	if !slices.Equal(runs, []int64{3, 1}) {
		t.Errorf("runs of %v rows; want 3 then 1", runs)
	}
}

func TestCancelWhileWaiting(t *testing.T) {
	m := &model{}
	b := newBatcher(t, m, batching.Options{MaxBatchSize: 4, MaxQueueDelay: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := b.Do(ctx, []onnx.Tensor{rows(1, 2, 0)})
		done <- err
	}()
	waitQueued(t, b, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v; want context.Canceled", err)
	}
	// Three others fill a batch the cancelled request would have joined:
	// its row is not run.
	calls := doAll(b, []onnx.Tensor{rows(1, 2, 0), rows(1, 2, 10), rows(1, 2, 20), rows(1, 2, 30)})
	for _, c := range calls {
		if c.err != nil {
			t.Fatal(c.err)
		}
		checkAnswer(t, c.x, c.out)
	}
	got := m.batchRows()
	if sum(got) != 4 {
		t.Errorf("runs of %v rows; want 4 rows in all, the cancelled one not among them", got)
	}
}

func TestCancelWhileRunning(t *testing.T) {
	m := &model{gate: make(chan struct{})}
	b := newBatcher(t, m, batching.Options{MaxBatchSize: 2, MaxQueueDelay: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := b.Do(ctx, []onnx.Tensor{rows(1, 2, 0)})
		done <- err
	}()
	other := make(chan call, 1)
	go func() {
		x := rows(1, 2, 5)
		out, _, err := b.Do(context.Background(), []onnx.Tensor{x})
		other <- call{x: x, out: out, err: err}
	}()
	for len(m.batchRows()) == 0 {
		runtime.Gosched()
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Do = %v; want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled caller waited for its running batch")
	}
	close(m.gate)
	c := <-other
	if c.err != nil {
		t.Fatal(c.err)
	}
	checkAnswer(t, c.x, c.out)
}

func TestClose(t *testing.T) {
	before := runtime.NumGoroutine()
	m := &model{}
	b, err := batching.New(m.run, batching.Options{MaxBatchSize: 4, MaxQueueDelay: time.Hour, Runners: 3})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	for range 2 {
		go func() {
			_, _, err := b.Do(context.Background(), []onnx.Tensor{rows(1, 2, 0)})
			done <- err
		}()
	}
	waitQueued(t, b, 2)
	b.Close()
	for range 2 {
		if err := <-done; !errors.Is(err, batching.ErrClosed) || !errors.Is(err, errkind.Unavailable) {
			t.Errorf("a waiting caller got %v; want ErrClosed", err)
		}
	}
	if _, _, err := b.Do(context.Background(), []onnx.Tensor{rows(1, 2, 0)}); !errors.Is(err, batching.ErrClosed) {
		t.Errorf("Do after Close = %v; want ErrClosed", err)
	}
	if _, _, err := b.Do(context.Background(), []onnx.Tensor{rows(9, 2, 0)}); !errors.Is(err, batching.ErrClosed) {
		t.Errorf("Do of a lone request after Close = %v; want ErrClosed", err)
	}
	b.Close() // a second Close is harmless
	if len(m.batchRows()) != 0 {
		t.Errorf("runs %v after Close; want none", m.batchRows())
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Close, %d before", runtime.NumGoroutine(), before)
		}
		runtime.Gosched()
	}
}

// TestCloseWaitsForRunningBatch: a batch whose caller gave up is still
// running; Close returns only once it has finished, so that the session
// under the batcher can be closed after.
func TestCloseWaitsForRunningBatch(t *testing.T) {
	m := &model{gate: make(chan struct{})}
	b, err := batching.New(m.run, batching.Options{MaxBatchSize: 2, MaxQueueDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := b.Do(ctx, []onnx.Tensor{rows(1, 2, 0)})
		done <- err
	}()
	for len(m.batchRows()) == 0 {
		runtime.Gosched()
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Do = %v; want context.Canceled", err)
	}
	closed := make(chan struct{})
	go func() {
		b.Close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned while a batch was running")
	case <-time.After(50 * time.Millisecond):
	}
	close(m.gate)
	<-closed
}

func TestNewRefuses(t *testing.T) {
	run := (&model{}).run
	for _, opts := range []batching.Options{
		{MaxBatchSize: 1, MaxQueueDelay: time.Millisecond},
		{MaxBatchSize: 8},
		{MaxBatchSize: 8, MaxQueueDelay: -time.Millisecond},
	} {
		if b, err := batching.New(run, opts); err == nil {
			b.Close()
			t.Errorf("New(%+v) succeeded", opts)
		}
	}
}

// waitQueued waits until n requests wait in b.
func waitQueued(t *testing.T, b *batching.Batcher, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.Waiting() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests waiting; want %d", b.Waiting(), n)
		}
		runtime.Gosched()
	}
}

func sum(v []int64) int64 {
	var s int64
	for _, x := range v {
		s += x
	}
	return s
}

// BenchmarkBatcher_Callers32_Rows1 measures what batching itself costs a
// request (queueing, fusing, splitting, answering), on a model that takes
// no time: 32 callers of one row of 8 FP32 values, batches of at most 32.
func BenchmarkBatcher_Callers32_Rows1(b *testing.B) {
	identity := func(inputs []onnx.Tensor) ([]onnx.Tensor, error) {
		x := inputs[0]
		return []onnx.Tensor{{Name: "y", Type: x.Type, Shape: slices.Clone(x.Shape), Data: slices.Clone(x.Data.([]float32))}}, nil
	}
	bt, err := batching.New(identity, batching.Options{MaxBatchSize: 32, MaxQueueDelay: 100 * time.Microsecond, Runners: 2})
	if err != nil {
		b.Fatal(err)
	}
	defer bt.Close()
	in := []onnx.Tensor{rows(1, 8, 0)}
	callers32(b, func() error { _, _, err := bt.Do(context.Background(), in); return err })
}
