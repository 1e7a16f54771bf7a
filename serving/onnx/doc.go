// Package onnx runs ONNX models with ONNX Runtime (through
// github.com/yalue/onnxruntime_go): it finds and initialises the shared
// library, loads sessions, converts between Tensor values and ONNX Runtime's,
// and inspects uploads for the registry.
package onnx
