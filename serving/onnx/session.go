package onnx

import (
	"fmt"
	"sync/atomic"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/mlgate/mlgate/registry"
)

// Options tune how sessions run.
type Options struct {
	// IntraOpThreads and InterOpThreads size ONNX Runtime's thread pools;
	// 0 leaves ONNX Runtime's default (one thread per core).
	IntraOpThreads int
	InterOpThreads int
}

// IO describes one input or output of a loaded model.
type IO struct {
	Name  string
	Type  DataType
	Shape []int64
}

// Session is a loaded model, safe for concurrent Run calls.
type Session struct {
	sess    *ort.DynamicAdvancedSession
	inputs  []IO
	outputs []IO
	// batched says every input and output is a numeric tensor whose first
	// dimension alone is dynamic: the batch, so a run's outputs can be
	// allocated before it, in Go, for ONNX Runtime to fill (see Run), until
	// a run proves the guess wrong (guessWrong).
	batched    bool
	guessWrong atomic.Bool
}

// Load loads the model at path. A file that is not a model, or one whose
// inputs or outputs mlgate cannot serve, gives an error matching
// registry.ErrInvalid.
func Load(path string, opts Options) (*Session, error) {
	if !ort.IsInitialized() {
		return nil, errNotInitialised
	}
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %w", err)
	}
	defer so.Destroy()
	if err := so.SetIntraOpNumThreads(opts.IntraOpThreads); err != nil {
		return nil, fmt.Errorf("set intra-op threads: %w", err)
	}
	if err := so.SetInterOpNumThreads(opts.InterOpThreads); err != nil {
		return nil, fmt.Errorf("set inter-op threads: %w", err)
	}
	ins, outs, err := ort.GetInputOutputInfoWithOptions(path, so)
	if err != nil {
		return nil, registry.Invalid("not a loadable ONNX model: %v", err)
	}
	s := &Session{}
	if s.inputs, err = describe("input", ins, false); err != nil {
		return nil, err
	}
	if s.outputs, err = describe("output", outs, true); err != nil {
		return nil, err
	}
	if len(s.outputs) == 0 {
		return nil, registry.Invalid("model has no outputs")
	}
	s.batched = batchedOnly(s.inputs) && batchedOnly(s.outputs)
	s.sess, err = ort.NewDynamicAdvancedSession(path, names(s.inputs), names(s.outputs), so)
	if err != nil {
		return nil, registry.Invalid("ONNX Runtime cannot create a session for the model: %v", err)
	}
	return s, nil
}

func describe(kind string, infos []ort.InputOutputInfo, output bool) ([]IO, error) {
	out := make([]IO, len(infos))
	for i, info := range infos {
		out[i].Name = info.Name
		switch {
		case info.OrtValueType == ort.ONNXTypeTensor:
			t, name := fromORT(info.DataType)
			if t == Invalid {
				return nil, registry.Invalid("%s %s has element type %s, which mlgate cannot serve", kind, info.Name, name)
			}
			out[i].Type, out[i].Shape = t, []int64(info.Dimensions.Clone())
		case output && info.OrtValueType == ort.ONNXTypeSequence:
			out[i].Type, out[i].Shape = JSON, []int64{-1}
		default:
			return nil, registry.Invalid("%s %s is of ONNX type %s, which mlgate cannot serve", kind, info.Name, info.OrtValueType)
		}
	}
	return out, nil
}

// batchedOnly reports whether every one of ios is a numeric tensor whose
// first dimension, and no other, is dynamic.
func batchedOnly(ios []IO) bool {
	for _, io := range ios {
		if io.Type == Bytes || io.Type == JSON || len(io.Shape) == 0 || io.Shape[0] >= 0 {
			return false
		}
		for _, d := range io.Shape[1:] {
			if d < 0 {
				return false
			}
		}
	}
	return true
}

func names(ios []IO) []string {
	out := make([]string, len(ios))
	for i, io := range ios {
		out[i] = io.Name
	}
	return out
}

// Inputs describes the model's inputs, in the order Run takes them.
func (s *Session) Inputs() []IO { return s.inputs }

// Outputs describes the model's outputs, in the order Run returns them.
func (s *Session) Outputs() []IO { return s.outputs }

// Signature returns the model's inputs and outputs in registry terms.
func (s *Session) Signature() registry.Signature {
	return registry.Signature{Inputs: specs(s.inputs), Outputs: specs(s.outputs)}
}

func specs(ios []IO) []registry.TensorSpec {
	out := make([]registry.TensorSpec, len(ios))
	for i, io := range ios {
		out[i] = registry.TensorSpec{Name: io.Name, Datatype: io.Type.String(), Shape: io.Shape}
	}
	return out
}

// Run runs the model once. inputs must be in the order of Inputs(), each of
// the declared type; their shapes must fit the declared ones (the caller
// checks, so that a mistake can be reported in its own terms). Every output is
// returned, in the order of Outputs().
//
// An error that matches ErrInput says the inputs caused the failure (see
// ErrInput); any other is a fault of the model, of ONNX Runtime, or of the
// caller's program (a wrong number of inputs, Data that does not fit Shape).
func (s *Session) Run(inputs []Tensor) ([]Tensor, error) {
	if len(inputs) != len(s.inputs) {
		return nil, fmt.Errorf("model takes %d inputs, got %d", len(s.inputs), len(inputs))
	}
	in := make([]ort.Value, len(inputs))
	defer destroyAll(in)
	for i, t := range inputs {
		v, err := newValue(t)
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", t.Name, err)
		}
		in[i] = v
	}
	result, tried := s.runBatched(in, inputs)
	if result != nil {
		return result, nil
	}
	out := make([]ort.Value, len(s.outputs))
	defer destroyAll(out)
	if err := s.sess.Run(in, out); err != nil {
		return nil, runError(err)
	}
	if tried {
		// Only the outputs allocated beforehand failed: the model's outputs
		// do not follow its input's batch. Stop guessing.
		s.guessWrong.Store(true)
	}
	result = make([]Tensor, len(out))
	for i, v := range out {
		t, err := fromValue(s.outputs[i].Name, v)
		if err != nil {
			return nil, err
		}
		result[i] = t
	}
	return result, nil
}

// runBatched runs a batched model with its outputs allocated beforehand,
// shaped by the batch of inputs, in Go memory that ONNX Runtime fills and
// the outputs keep: no copy, and none of the calls onnxruntime_go makes to
// learn the shape of an output ONNX Runtime allocated. It returns nil when
// the model is not batched or the inputs disagree on the batch (tried
// false), or when the run failed (tried true): Run then runs again letting
// ONNX Runtime allocate, so that a model whose outputs do not follow its
// input's batch is answered, or fails, as it would otherwise.
func (s *Session) runBatched(in []ort.Value, inputs []Tensor) (result []Tensor, tried bool) {
	if !s.batched || s.guessWrong.Load() {
		return nil, false
	}
	batch := inputs[0].Shape[0]
	for _, t := range inputs {
		if len(t.Shape) == 0 || t.Shape[0] != batch {
			return nil, false
		}
	}
	result = make([]Tensor, len(s.outputs))
	out := make([]ort.Value, len(s.outputs))
	defer destroyAll(out)
	for i, io := range s.outputs {
		shape := make([]int64, len(io.Shape))
		shape[0] = batch
		copy(shape[1:], io.Shape[1:])
		result[i] = Tensor{Name: io.Name, Type: io.Type, Shape: shape, Data: Zeros(io.Type, int(Elements(shape)))}
		v, err := newValue(result[i])
		if err != nil {
			return nil, false
		}
		out[i] = v
	}
	if err := s.sess.Run(in, out); err != nil {
		return nil, true
	}
	return result, true
}

func destroyAll(vs []ort.Value) {
	for _, v := range vs {
		if v != nil {
			v.Destroy()
		}
	}
}

// Warm runs the model once on zeros (empty strings for BYTES), with every
// dynamic dimension set to 1, so that the first real request does not pay
// for ONNX Runtime's lazy initialisation. It doubles as a check that the
// model runs at all: its error is the model's fault, never matching ErrInput,
// since no caller chose those inputs.
func (s *Session) Warm() error {
	inputs := make([]Tensor, len(s.inputs))
	for i, io := range s.inputs {
		shape := make([]int64, len(io.Shape))
		for j, d := range io.Shape {
			shape[j] = max(d, 1)
		}
		inputs[i] = Tensor{Name: io.Name, Type: io.Type, Shape: shape, Data: Zeros(io.Type, int(Elements(shape)))}
	}
	if _, err := s.Run(inputs); err != nil {
		return fmt.Errorf("test inference on zeros failed: %v", err)
	}
	return nil
}

// Close releases the session. It must not be called while Run is running.
func (s *Session) Close() error {
	return s.sess.Destroy()
}

// Zeros returns a slice of n zero values of type t.
func Zeros(t DataType, n int) any {
	switch t {
	case Bool:
		return make([]bool, n)
	case Int8:
		return make([]int8, n)
	case Int16:
		return make([]int16, n)
	case Int32:
		return make([]int32, n)
	case Int64:
		return make([]int64, n)
	case Uint8:
		return make([]uint8, n)
	case Uint16:
		return make([]uint16, n)
	case Uint32:
		return make([]uint32, n)
	case Uint64:
		return make([]uint64, n)
	case FP32:
		return make([]float32, n)
	case FP64:
		return make([]float64, n)
	case Bytes:
		return make([]string, n)
	}
	return nil
}

// LoadWarm loads the model at path and warms it (see Warm): a session ready
// to serve its first request at full speed.
func LoadWarm(path string, opts Options) (*Session, error) {
	s, err := Load(path, opts)
	if err != nil {
		return nil, err
	}
	if err := s.Warm(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}
