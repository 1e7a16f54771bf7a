package onnx

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/errkind"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/registry"
)

func TestMain(m *testing.M) {
	lib, err := FindLibrary("")
	if err == nil {
		err = Init(lib)
	}
	if err != nil {
		// Every test here needs ONNX Runtime: without it the package fails.
		os.Stderr.WriteString(err.Error() + "\n")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func load(t testing.TB, name string) *Session {
	t.Helper()
	s, err := Load(modelzoo.Path(name), Options{IntraOpThreads: 1, InterOpThreads: 1})
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSignatures(t *testing.T) {
	tests := []struct {
		model string
		want  registry.Signature
	}{
		{modelzoo.Linear, registry.Signature{
			Inputs:  []registry.TensorSpec{{Name: "x", Datatype: "FP32", Shape: []int64{-1, 4}}},
			Outputs: []registry.TensorSpec{{Name: "y", Datatype: "FP32", Shape: []int64{-1, 2}}},
		}},
		{modelzoo.MultiInput, registry.Signature{
			Inputs: []registry.TensorSpec{
				{Name: "a", Datatype: "FP32", Shape: []int64{-1, 3}},
				{Name: "b", Datatype: "INT64", Shape: []int64{-1, 2}},
			},
			Outputs: []registry.TensorSpec{
				{Name: "sum", Datatype: "FP32", Shape: []int64{-1, 1}},
				{Name: "b_doubled", Datatype: "INT64", Shape: []int64{-1, 2}},
			},
		}},
		{modelzoo.IrisFile, registry.Signature{
			Inputs: []registry.TensorSpec{{Name: "float_input", Datatype: "FP32", Shape: []int64{-1, 4}}},
			Outputs: []registry.TensorSpec{
				{Name: "output_label", Datatype: "INT64", Shape: []int64{-1}},
				{Name: "output_probability", Datatype: "JSON", Shape: []int64{-1}},
			},
		}},
		{modelzoo.FixedShape, registry.Signature{
			Inputs:  []registry.TensorSpec{{Name: "x", Datatype: "FP32", Shape: []int64{2, 3}}},
			Outputs: []registry.TensorSpec{{Name: "y", Datatype: "FP32", Shape: []int64{2, 3}}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			got, err := Inspector{}.Inspect(t.Context(), modelzoo.Path(tt.model))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("signature = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestInspectRefusesNonModels(t *testing.T) {
	for _, name := range []string{modelzoo.Garbage, modelzoo.Truncated} {
		_, err := Inspector{}.Inspect(t.Context(), modelzoo.Path(name))
		if !errors.Is(err, registry.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestRunLinear(t *testing.T) {
	s := load(t, modelzoo.Linear)
	x := make([]float32, 12)
	for i := range x {
		x[i] = float32(i)
	}
	out, err := s.Run([]Tensor{{Name: "x", Type: FP32, Shape: []int64{3, 4}, Data: x}})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{1.5, 7.5, 11.5, 17.5, 21.5, 27.5}
	if !reflect.DeepEqual(out[0].Data, want) || !reflect.DeepEqual(out[0].Shape, []int64{3, 2}) {
		t.Errorf("y = %v %v, want %v [3 2]", out[0].Data, out[0].Shape, want)
	}
}

func TestRunZipMap(t *testing.T) {
	s := load(t, modelzoo.IrisFile)
	x := []float32{5.1, 3.5, 1.4, 0.2, 6.9, 3.1, 5.4, 2.1}
	out, err := s.Run([]Tensor{{Name: "float_input", Type: FP32, Shape: []int64{2, 4}, Data: x}})
	if err != nil {
		t.Fatal(err)
	}
	if got := out[0].Data.([]int64); !reflect.DeepEqual(got, []int64{0, 2}) {
		t.Errorf("labels = %v, want [0 2]", got)
	}
	maps := out[1].Data.([]Map)
	if len(maps) != 2 || !reflect.DeepEqual(maps[0].Keys, []string{"0", "1", "2"}) || maps[0].Values[0] < 0.9 {
		t.Errorf("probabilities = %+v", maps)
	}
}

func TestRunAllTypes(t *testing.T) {
	s := load(t, modelzoo.AllTypes)
	inputs := make([]Tensor, len(s.Inputs()))
	for i, io := range s.Inputs() {
		inputs[i] = Tensor{Name: io.Name, Type: io.Type, Shape: []int64{1, 2}, Data: Zeros(io.Type, 2)}
	}
	inputs[len(inputs)-1].Data = []string{"héllo", ""}
	out, err := s.Run(inputs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range out {
		if out[i].Type != inputs[i].Type || !reflect.DeepEqual(out[i].Data, inputs[i].Data) {
			t.Errorf("output %s = %v %v, want %v %v", out[i].Name, out[i].Type, out[i].Data, inputs[i].Type, inputs[i].Data)
		}
	}
}

func TestFindLibraryExplainsFailure(t *testing.T) {
	_, err := FindLibrary("/nonexistent/libonnxruntime.so")
	if err == nil {
		t.Fatal("want an error for a missing configured library")
	}
}

// TestRunErrors provokes failures of both sorts with real models: those the
// input caused match ErrInput (and errkind.Invalid), the rest match neither.
// Fragile and Faulty both warm on zeros and fail on [1,2,3,4].
func TestRunErrors(t *testing.T) {
	x := func(shape []int64, v ...float32) []Tensor {
		return []Tensor{{Name: "x", Type: FP32, Shape: shape, Data: v}}
	}
	tests := []struct {
		name   string
		model  string
		inputs []Tensor
		input  bool   // want ErrInput
		says   string // in the message
	}{
		{"index out of range", modelzoo.Fragile, x([]int64{1, 4}, 1, 2, 3, 4), true, "indices element out of data bounds"},
		{"dimension", modelzoo.Linear, x([]int64{1, 5}, 1, 2, 3, 4, 5), true, "Got invalid dimensions for input: x"},
		{"fixed dimension", modelzoo.FixedShape, x([]int64{3, 2}, 1, 2, 3, 4, 5, 6), true, "Got invalid dimensions for input: x"},
		{"rank", modelzoo.Linear, x([]int64{1, 1, 4}, 1, 2, 3, 4), true, "Invalid rank for input: x"},
		{"element type", modelzoo.Linear, []Tensor{{Name: "x", Type: FP64, Shape: []int64{1, 4}, Data: []float64{1, 2, 3, 4}}}, true, "Unexpected input data type"},
		{"the model's own shapes", modelzoo.Faulty, x([]int64{1, 4}, 1, 2, 3, 4), false, "cannot be reshaped"},
		{"the caller's program", modelzoo.Linear, nil, false, "model takes 1 inputs, got 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := LoadWarm(modelzoo.Path(tt.model), Options{IntraOpThreads: 1, InterOpThreads: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			_, err = s.Run(tt.inputs)
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("Run = %v, want an error saying %q", err, tt.says)
			}
			if got := errors.Is(err, ErrInput); got != tt.input {
				t.Errorf("errors.Is(%v, ErrInput) = %v, want %v", err, got, tt.input)
			}
			want := errkind.Kind("")
			if tt.input {
				want = errkind.Invalid
			}
			if got := errkind.Of(err); got != want {
				t.Errorf("kind %q, want %q", got, want)
			}
		})
	}
}

// TestRunErrorReadsTheStatusNotTheNodeName judges ONNX Runtime's messages:
// a node's failure by its status message, whatever the model named the node.
func TestRunErrorReadsTheStatusNotTheNodeName(t *testing.T) {
	const node = "Error running network: Non-zero status code returned while running %s node. Name:'%s' Status Message: %s"
	tests := []struct {
		msg   string
		input bool
	}{
		{fmt.Sprintf(node, "GatherND", "lookup", "invalid indice found, indice = 7"), true},
		{fmt.Sprintf(node, "GatherElements", "pick", "/src/gather_elements.cc:1 GatherElements op: Out of range value in index tensor"), true},
		{fmt.Sprintf(node, "ScatterElements", "put", "indices element out of data bounds, idx=9 must be within the inclusive range [-3,2]"), true},
		{fmt.Sprintf(node, "Reshape", "invalid indice found", "The input tensor cannot be reshaped to the requested shape."), false},
		{fmt.Sprintf(node, "Add", "add", "Attempting to broadcast an axis by a dimension other than 1. 3 by 5"), false},
		{fmt.Sprintf(node, "MatMul", "mm", "Failed to allocate memory for requested buffer of size 17179869184"), false},
		{"Error running network: Unexpected input data type. Actual: (tensor(double)) , expected: (tensor(float))", true},
		{"Error running network: Invalid input name: y", false},
	}
	for _, tt := range tests {
		err := runError(errors.New(tt.msg))
		if got := errors.Is(err, ErrInput); got != tt.input {
			t.Errorf("%q: matches ErrInput %v, want %v", tt.msg, got, tt.input)
		}
		if err.Error() != tt.msg {
			t.Errorf("message became %q, want %q", err.Error(), tt.msg)
		}
	}
}

// BenchmarkRun_Linear_Rows1 is one run of the linear model on one row: the
// tensors made for ONNX Runtime and the outputs copied back.
func BenchmarkRun_Linear_Rows1(b *testing.B) {
	s := load(b, modelzoo.Linear)
	in := []Tensor{{Name: "x", Type: FP32, Shape: []int64{1, 4}, Data: []float32{1, 2, 3, 4}}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Run(in); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRunBatched checks that a batched model, whose outputs Run allocates
// before the run, answers exactly as when ONNX Runtime allocates them.
func TestRunBatched(t *testing.T) {
	for _, c := range []struct {
		model  string
		inputs func(batch int64) []Tensor
	}{
		{modelzoo.Linear, func(n int64) []Tensor {
			return []Tensor{{Name: "x", Type: FP32, Shape: []int64{n, 4}, Data: ramp[float32](4 * n)}}
		}},
		{modelzoo.MultiInput, func(n int64) []Tensor {
			return []Tensor{
				{Name: "a", Type: FP32, Shape: []int64{n, 3}, Data: ramp[float32](3 * n)},
				{Name: "b", Type: Int64, Shape: []int64{n, 2}, Data: ramp[int64](2 * n)},
			}
		}},
	} {
		s, plain := load(t, c.model), load(t, c.model)
		if !s.batched {
			t.Fatalf("%s: not batched", c.model)
		}
		plain.guessWrong.Store(true)
		for _, n := range []int64{1, 3, 100} {
			got, err := s.Run(c.inputs(n))
			want, werr := plain.Run(c.inputs(n))
			if err != nil || werr != nil || !reflect.DeepEqual(got, want) {
				t.Errorf("%s, batch %d: %v, %v; ONNX Runtime allocating: %v, %v", c.model, n, got, err, want, werr)
			}
		}
		if s.guessWrong.Load() {
			t.Errorf("%s: a right guess counted as wrong", c.model)
		}
	}
	for _, m := range []string{modelzoo.IrisFile, modelzoo.Strings} {
		if load(t, m).batched {
			t.Errorf("%s: batched, but an output is not a numeric tensor", m)
		}
	}
}

// TestRunBatchedGuessWrong checks that a model whose outputs do not follow
// its input's batch is answered all the same, and that Run stops guessing.
func TestRunBatchedGuessWrong(t *testing.T) {
	s := load(t, modelzoo.Linear)
	s.outputs = []IO{{Name: "y", Type: FP32, Shape: []int64{-1, 3}}} // y is [batch, 2]
	in := []Tensor{{Name: "x", Type: FP32, Shape: []int64{1, 4}, Data: []float32{1, 2, 3, 4}}}
	got, err := s.Run(in)
	if err != nil || len(got) != 1 || fmt.Sprint(got[0].Shape, got[0].Data) != "[1 2] [4 10]" {
		t.Fatalf("Run = %v, %v; want y [1 2] [4 10]", got, err)
	}
	if !s.guessWrong.Load() {
		t.Error("Run still guesses the outputs of a model that proved it wrong")
	}
}

func ramp[T float32 | int64](n int64) []T {
	out := make([]T, n)
	for i := range out {
		out[i] = T(i%7) - 3
	}
	return out
}
