package serving_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/telemetry"
	"github.com/mlgate/mlgate/serving/batching"
	pb "github.com/mlgate/mlgate/serving/grpcv2/inferencepb"
	"github.com/mlgate/mlgate/serving/onnx"
)

// TestBatchingGateway: a version registered with batching answers
// concurrent V2 requests as the model does alone, fuses them into fewer
// runs, and reports its queue and batch sizes in /metrics and its batching
// in its model configuration.
func TestBatchingGateway(t *testing.T) {
	m, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, withMetrics(m))
	r := g.registerWith("linear", modelzoo.Linear, `{"batching": {"max_batch_size": 4, "max_queue_delay": "200ms"}}`)
	if r.status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	var v struct {
		Batching map[string]any `json:"batching"`
	}
	r.decode(t, &v)
	if want := map[string]any{"max_batch_size": 4.0, "max_queue_delay": "200ms"}; !reflect.DeepEqual(v.Batching, want) {
		t.Errorf("the version's batching = %v; want %v", v.Batching, want)
	}

	const callers = 16
	var wg sync.WaitGroup
	for c := range callers {
		wg.Go(func() {
			x := []float32{float32(c), 1, -2, float32(c) / 4}
			out, r := g.infer("/v2/models/linear/infer", v2Input{Name: "x", Shape: []int64{1, 4}, Datatype: "FP32", Data: x})
			if r.status != http.StatusOK {
				t.Errorf("caller %d: %d %s", c, r.status, r.body)
				return
			}
			want := direct(t, modelzoo.Linear, onnx.Tensor{Name: "x", Type: onnx.FP32, Shape: []int64{1, 4}, Data: x})
			var got []float32
			if err := json.Unmarshal(out.Outputs[0].Data, &got); err != nil {
				t.Errorf("caller %d: %v", c, err)
				return
			}
			if !reflect.DeepEqual(got, want[0].Data) || !reflect.DeepEqual(out.Outputs[0].Shape, []int64{1, 2}) {
				t.Errorf("caller %d got %v %v; want %v [1 2]", c, got, out.Outputs[0].Shape, want[0].Data)
			}
		})
	}
	wg.Wait()

	series := parseSeries(t, g.do(http.MethodGet, "/metrics", "", nil).body)
	labels := `{model="linear",version="1"}`
	if got := series["mlgate_batch_queue_duration_seconds_count"+labels]; got != strconv.Itoa(callers) {
		t.Errorf("mlgate_batch_queue_duration_seconds_count%s = %q; want %d", labels, got, callers)
	}
	if got := series["mlgate_batch_size_sum"+labels]; got != strconv.Itoa(callers) {
		t.Errorf("mlgate_batch_size_sum%s = %q; want %d rows", labels, got, callers)
	}
	runs, _ := strconv.Atoi(series["mlgate_batch_size_count"+labels])
	if runs < callers/4 || runs >= callers {
		t.Errorf("mlgate_batch_size_count%s = %d; want fewer runs than the %d requests, each of at most 4 rows", labels, runs, callers)
	}
	if got := series[`mlgate_batch_size_bucket{model="linear",version="1",le="4"}`]; got != strconv.Itoa(runs) {
		t.Errorf(`mlgate_batch_size_bucket{le="4"} = %q; want every one of the %d runs`, got, runs)
	}

	var stats struct {
		ModelStats []struct {
			InferenceCount int `json:"inference_count"`
			ExecutionCount int `json:"execution_count"`
		} `json:"model_stats"`
	}
	g.do(http.MethodGet, "/v2/models/linear/versions/1/stats", "", nil).decode(t, &stats)
	if st := stats.ModelStats; len(st) != 1 || st[0].InferenceCount != callers || st[0].ExecutionCount != runs {
		t.Errorf("statistics %+v; want %d inferences in %d executions", st, callers, runs)
	}

	var cfg struct {
		MaxBatchSize int `json:"max_batch_size"`
		Input        []struct {
			Dims []int64 `json:"dims"`
		} `json:"input"`
		DynamicBatching struct {
			MaxQueueDelayMicroseconds int64 `json:"max_queue_delay_microseconds"`
		} `json:"dynamic_batching"`
	}
	g.do(http.MethodGet, "/v2/models/linear/config", "", nil).decode(t, &cfg)
	if cfg.MaxBatchSize != 4 || !reflect.DeepEqual(cfg.Input[0].Dims, []int64{4}) || cfg.DynamicBatching.MaxQueueDelayMicroseconds != 200000 {
		t.Errorf("config = %+v; want max_batch_size 4, dims [4] without the batch, a delay of 200000µs", cfg)
	}
	client, _ := g.grpcClient()
	gc, err := client.ModelConfig(t.Context(), &pb.ModelConfigRequest{Name: "linear"})
	if err != nil {
		t.Fatal(err)
	}
	if c := gc.GetConfig(); c.GetMaxBatchSize() != 4 || !reflect.DeepEqual(c.GetInput()[0].GetDims(), []int64{4}) || c.GetDynamicBatching().GetMaxQueueDelayMicroseconds() != 200000 {
		t.Errorf("gRPC config = %v; want the same as over HTTP", c)
	}
	// A gRPC call goes through the batcher as an HTTP one does.
	if _, err := client.ModelInfer(t.Context(), &pb.ModelInferRequest{ModelName: "linear", Inputs: []*pb.ModelInferRequest_InferInputTensor{linearInput(true)}}); err != nil {
		t.Fatal(err)
	}
	series = parseSeries(t, g.do(http.MethodGet, "/metrics", "", nil).body)
	if got := series["mlgate_batch_size_sum"+labels]; got != strconv.Itoa(callers+2) {
		t.Errorf("after a gRPC call of 2 rows, mlgate_batch_size_sum%s = %q; want %d rows", labels, got, callers+2)
	}
}

// TestBatchingRefused: registration refuses batching a model that cannot
// batch, and batching out of bounds, with a message naming what to fix.
func TestBatchingRefused(t *testing.T) {
	g := startGateway(t)
	tests := []struct {
		name, file, metadata, want string
	}{
		{"fixed shape", modelzoo.FixedShape, `{"batching": {"max_batch_size": 8, "max_queue_delay": "1ms"}}`,
			"metadata.batching: input x has shape [2,3]; a model batches only when the first dimension of every input and output is dynamic (-1)"},
		{"batch of one", modelzoo.Linear, `{"batching": {"max_batch_size": 1, "max_queue_delay": "1ms"}}`,
			"metadata.batching.max_batch_size: must be 2 to 4096, got 1"},
		{"delay too long", modelzoo.Linear, `{"batching": {"max_batch_size": 8, "max_queue_delay": "2s"}}`,
			"metadata.batching.max_queue_delay: must be more than 0 and at most 1s"},
		{"unknown field", modelzoo.Linear, `{"batching": {"max_batch_size": 8, "max_queue_delay": "1ms", "timeout": "1s"}}`,
			`unknown field "timeout"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := g.registerWith("m", tt.file, tt.metadata)
			if r.status != http.StatusBadRequest {
				t.Fatalf("register: %d %s; want 400", r.status, r.body)
			}
			if msg := r.errorMessage(t); !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not say %q", msg, tt.want)
			}
		})
	}
}

// TestDeletedBatchedVersionDrains: a request holding a deleted version
// served with batching still runs through its batcher; the last release
// closes the batcher with the session.
func TestDeletedBatchedVersionDrains(t *testing.T) {
	g := startGateway(t)
	if r := g.registerWith("linear", modelzoo.Linear, `{"batching": {"max_batch_size": 4, "max_queue_delay": "1ms"}}`); r.status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	g.register("linear", modelzoo.LinearV2)
	held, err := g.catalog.Acquire("linear", "1")
	if err != nil {
		t.Fatal(err)
	}
	if r := g.do(http.MethodDelete, "/v1/models/linear/versions/1", "", nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	x := []onnx.Tensor{{Name: "x", Type: onnx.FP32, Shape: []int64{1, 4}, Data: []float32{0, 1, 2, 3}}}
	out, err := held.RunBatched(context.Background(), x)
	if err != nil || !reflect.DeepEqual(out[0].Data, []float32{1.5, 7.5}) {
		t.Fatalf("the request in flight got %v, %v; want [1.5 7.5] from the retired version", out, err)
	}
	held.Release()
	if _, err := held.RunBatched(context.Background(), x); !errors.Is(err, batching.ErrClosed) {
		t.Errorf("a run after the last release = %v; want the batcher closed", err)
	}
}
