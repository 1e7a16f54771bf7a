package batching_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/serving/batching"
	"github.com/mlgate/mlgate/serving/onnx"
)

func TestMain(m *testing.M) {
	lib, err := onnx.FindLibrary("")
	if err == nil {
		err = onnx.Init(lib)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "batching tests need ONNX Runtime (run them through `make test`):", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func load(t testing.TB, name string, opts onnx.Options) *onnx.Session {
	t.Helper()
	s, err := onnx.LoadWarm(modelzoo.Path(name), opts)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestMatchesUnbatched: concurrent callers of a batched model zoo model get
// what running their inputs alone gives, numeric, BYTES and map (ZipMap)
// outputs alike, and their runs are fused. The answers are equal exactly,
// but for iris's probabilities: ONNX Runtime's LinearClassifier sums a
// row's scores in another order in a batch of one than in a larger batch,
// so their last bits differ (as they do between one request of one row and
// one of several).
func TestMatchesUnbatched(t *testing.T) {
	words := []string{"cat", "dog", "bird", "fish", ""}
	tests := []struct {
		model  string
		inputs func(caller, rows int) []onnx.Tensor
		// tolerance, when not 0, is how far a map's values may be from
		// the unbatched ones.
		tolerance float64
	}{
		{modelzoo.Linear, func(c, n int) []onnx.Tensor {
			return []onnx.Tensor{floats("x", n, 4, float32(c))}
		}, 0},
		{modelzoo.IrisFile, func(c, n int) []onnx.Tensor {
			x := floats("float_input", n, 4, float32(c%5))
			for i, v := range x.Data.([]float32) {
				x.Data.([]float32)[i] = 0.5 + float32(int(v)%7)
			}
			return []onnx.Tensor{x}
		}, 1e-6},
		{modelzoo.Strings, func(c, n int) []onnx.Tensor {
			text := make([]string, n)
			for i := range text {
				text[i] = words[(c+i)%len(words)]
			}
			return []onnx.Tensor{{Name: "text", Type: onnx.Bytes, Shape: []int64{int64(n), 1}, Data: text}}
		}, 0},
		{modelzoo.MultiInput, func(c, n int) []onnx.Tensor {
			b := make([]int64, 2*n)
			for i := range b {
				b[i] = int64(c*10 + i)
			}
			return []onnx.Tensor{floats("a", n, 3, float32(c)), {Name: "b", Type: onnx.Int64, Shape: []int64{int64(n), 2}, Data: b}}
		}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			s := load(t, tt.model, onnx.Options{IntraOpThreads: 1, InterOpThreads: 1})
			var fused atomic.Int64 // the most rows of a run
			run := func(inputs []onnx.Tensor) ([]onnx.Tensor, error) {
				for n := inputs[0].Shape[0]; n > fused.Load(); {
					fused.CompareAndSwap(fused.Load(), n)
				}
				return s.Run(inputs)
			}
			b, err := batching.New(run, batching.Options{MaxBatchSize: 8, MaxQueueDelay: slow, Runners: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			const callers = 24
			var wg sync.WaitGroup
			for c := range callers {
				wg.Go(func() {
					in := tt.inputs(c, 1+c%3)
					want, err := s.Run(in)
					if err != nil {
						t.Errorf("caller %d alone: %v", c, err)
						return
					}
					got, _, err := b.Do(context.Background(), in)
					if err != nil {
						t.Errorf("caller %d batched: %v", c, err)
						return
					}
					if tt.tolerance > 0 {
						got = mapsWithin(got, want, tt.tolerance)
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("caller %d batched got\n%+v\nalone\n%+v", c, got, want)
					}
				})
			}
			wg.Wait()
			if fused.Load() <= 3 {
				t.Errorf("the largest run had %d rows: no run was fused", fused.Load())
			}
		})
	}
}

// mapsWithin returns got with each map's values replaced by want's when
// they are within tolerance of them, for the rest to be compared exactly.
func mapsWithin(got, want []onnx.Tensor, tolerance float64) []onnx.Tensor {
	if len(got) != len(want) {
		return got
	}
	got = slices.Clone(got)
	for i, t := range got {
		g, ok1 := t.Data.([]onnx.Map)
		w, ok2 := want[i].Data.([]onnx.Map)
		if !ok1 || !ok2 || len(g) != len(w) {
			continue
		}
		for j := range g {
			if !slices.Equal(g[j].Keys, w[j].Keys) || len(g[j].Values) != len(w[j].Values) {
				return got
			}
			for k, v := range g[j].Values {
				if math.Abs(float64(v-w[j].Values[k])) > tolerance {
					return got
				}
			}
		}
		got[i].Data = w
	}
	return got
}

// floats returns n rows of k FP32 values counting up from first.
func floats(name string, n, k int, first float32) onnx.Tensor {
	t := rows(n, k, first)
	t.Name = name
	return t
}

// BenchmarkMLPHeavy_Callers32 runs 32 concurrent callers of one row each on
// mlp_heavy.onnx, each run alone (Unbatched) or through a Batcher of at
// most 32 rows, with ONNX Runtime's intra-op threads at 1 or at its default
// (one per core). ns/op is the time per request: throughput is its inverse.
func BenchmarkMLPHeavy_Callers32(b *testing.B) {
	for _, threads := range []int{1, 0} {
		s := load(b, modelzoo.MLPHeavy, onnx.Options{IntraOpThreads: threads, InterOpThreads: 1})
		x := floats("x", 1, 256, 0)
		for i, v := range x.Data.([]float32) {
			x.Data.([]float32)[i] = float32(int(v)%11-5) / 5
		}
		in := []onnx.Tensor{x}
		b.Run(fmt.Sprintf("IntraOp%d/Unbatched", threads), func(b *testing.B) {
			callers32(b, func() error { _, err := s.Run(in); return err })
		})
		for _, opts := range []batching.Options{
			{MaxBatchSize: 32, MaxQueueDelay: 500 * time.Microsecond, Runners: 1},
			{MaxBatchSize: 32, MaxQueueDelay: 2 * time.Millisecond, Runners: 1},
			{MaxBatchSize: 32, MaxQueueDelay: 500 * time.Microsecond, Runners: 2},
		} {
			name := fmt.Sprintf("IntraOp%d/Batched_Delay%v_Runners%d", threads, opts.MaxQueueDelay, opts.Runners)
			b.Run(name, func(b *testing.B) {
				bt, err := batching.New(s.Run, opts)
				if err != nil {
					b.Fatal(err)
				}
				defer bt.Close()
				var rows, runs atomic.Int64
				callers32(b, func() error {
					_, st, err := bt.Do(context.Background(), in)
					if st.Reports {
						rows.Add(int64(st.Rows))
						runs.Add(1)
					}
					return err
				})
				b.ReportMetric(float64(rows.Load())/float64(max(runs.Load(), 1)), "rows/run")
			})
		}
	}
}

// callers32 calls do b.N times from 32 goroutines at once.
func callers32(b *testing.B, do func() error) {
	b.ReportAllocs()
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for range 32 {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if err := do(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

// TestInputFaultIsolatedOnnx: on fragile.onnx, whose run fails for a row
// whose largest value is 3 or more (an index out of range: the input's
// fault), the caller who sent such a row gets ErrInput and the others of
// its batch their answers.
func TestInputFaultIsolatedOnnx(t *testing.T) {
	s := load(t, modelzoo.Fragile, onnx.Options{IntraOpThreads: 1, InterOpThreads: 1})
	var runs atomic.Int64
	run := func(inputs []onnx.Tensor) ([]onnx.Tensor, error) {
		runs.Add(1)
		return s.Run(inputs)
	}
	b, err := batching.New(run, batching.Options{MaxBatchSize: 4, MaxQueueDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	inputs := [][]float32{{0, 1, 2, 1}, {1, 2, 3, 4}, {2, 2, 0, 1}, {0, 0, 0, 0}}
	var wg sync.WaitGroup
	for i, x := range inputs {
		wg.Go(func() {
			in := []onnx.Tensor{{Name: "x", Type: onnx.FP32, Shape: []int64{1, 4}, Data: x}}
			got, _, err := b.Do(context.Background(), in)
			if i == 1 {
				if !errors.Is(err, onnx.ErrInput) {
					t.Errorf("the caller of %v got %v; want ErrInput", x, err)
				}
				return
			}
			want, werr := s.Run(in)
			if err != nil || werr != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("the caller of %v got %v, %v; want %v, %v", x, got, err, want, werr)
			}
		})
	}
	wg.Wait()
	if n := runs.Load(); n != 5 {
		t.Errorf("%d runs; want the fused one, then each of the four alone", n)
	}
}
