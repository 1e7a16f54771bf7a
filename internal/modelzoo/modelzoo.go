package modelzoo

import (
	_ "embed"
	"path/filepath"
	"runtime"
)

// File names of the models in this directory, for use with [Path].
const (
	// Linear: x FP32 [batch,4] → y FP32 [batch,2] = x·W + b, with
	// W = [[1,-1],[2,0.5],[-0.5,1],[0,2]] and b = [0.5,-1].
	Linear = "linear.onnx"
	// LinearV2 has Linear's signature but W = [[-1,1],[0.5,2],[1,-0.5],[2,0]]
	// and b = [10,20], so the two versions can be told apart by their output.
	LinearV2 = "linear_v2.onnx"
	// MultiInput: a FP32 [batch,3] and b INT64 [batch,2] → sum FP32
	// [batch,1] = row sum of a + row sum of b, and b_doubled INT64 [batch,2]
	// = b*2.
	MultiInput = "multi_input.onnx"
	// IrisFile is a scikit-learn LogisticRegression trained on the iris
	// dataset and converted with skl2onnx's default options: float_input
	// FP32 [batch,4] → output_label INT64 [batch] and output_probability, a
	// sequence of maps int64→float (ZipMap). Its bytes are embedded as [Iris].
	IrisFile = "iris.onnx"
	// Strings: text STRING [batch,1] → code INT64 [batch,1] (LabelEncoder:
	// "cat"→1, "dog"→2, "bird"→3, anything else → -1) and echo STRING
	// [batch,1] = text.
	Strings = "strings.onnx"
	// AllTypes has one input of shape [batch,2] per data type, each copied
	// to an output named <input>_out: b BOOL, i8 INT8, i16 INT16, i32 INT32,
	// i64 INT64, u8 UINT8, u16 UINT16, u32 UINT32, u64 UINT64, f32 FP32,
	// f64 FP64, s STRING.
	AllTypes = "all_types.onnx"
	// FixedShape: x FP32 with the fixed shape [2,3] → y FP32 [2,3] = x*2.
	FixedShape = "fixed_shape.onnx"
	// Dense10 and Dense50: x FP32 [batch,n] → y FP32 [batch,1], a weighted
	// sum of 10 or 50 inputs, for the feature-lookup benchmarks.
	Dense10 = "dense10.onnx"
	Dense50 = "dense50.onnx"
	// Fragile: x FP32 [batch,4] → y FP32 [batch,2], a row of a 3-row table
	// picked by each row's largest value. It loads and warms (on zeros) but
	// fails on a row whose largest value is 3 or more, such as [1,2,3,4].
	Fragile = "fragile.onnx"
	// Faulty: x FP32 [batch,4] → y FP32 [batch,2], x's first two columns.
	// Like Fragile it loads and warms but fails on a batch holding a value
	// of 3 or more, by a fault of its own graph rather than of the input:
	// it reshapes the columns to [batch,3].
	Faulty = "faulty.onnx"
	// MLPHeavy: x FP32 [batch,256] → y FP32 [batch,8] through three
	// 2048-wide dense layers with Relu (about 8.9 million multiply-adds a
	// row, 36 MB of weights, more than a CPU cache holds): a model whose run
	// time dominates a request's, for the dynamic batching benchmarks. The
	// graph computes its weights from their index, which ONNX Runtime folds
	// into constants when it loads the session, so the file is small and a
	// run costs what stored weights would.
	MLPHeavy = "mlp_heavy.onnx"
	// Garbage is 2 KiB of deterministic pseudo-random bytes, not a model.
	Garbage = "garbage.onnx"
	// Truncated is the first half of linear.onnx's bytes, not a valid model.
	Truncated = "truncated.onnx"
)

// Iris is the content of iris.onnx (see [IrisFile]), the model served by
// `mlgate serve --demo`.
//
//go:embed iris.onnx
var Iris []byte

// Path returns the absolute path of the model file name (one of the
// constants above) in this package's source directory. The directory is the
// one this file was compiled from, so Path is meant for tests and benchmarks
// run from the source tree; binaries should use [Iris] instead.
func Path(name string) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("modelzoo: cannot locate the source directory")
	}
	return filepath.Join(filepath.Dir(file), name)
}
