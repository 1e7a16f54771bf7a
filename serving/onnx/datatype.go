package onnx

import (
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// DataType is a tensor element type, named as in the KServe V2 protocol.
type DataType uint8

// The element types mlgate can feed to and read from a model. JSON marks an
// output that is not a tensor, such as the sequence of maps ("ZipMap") that
// scikit-learn classifiers emit; its Data is a []Map.
const (
	Invalid DataType = iota
	Bool
	Int8
	Int16
	Int32
	Int64
	Uint8
	Uint16
	Uint32
	Uint64
	FP32
	FP64
	Bytes
	JSON
)

var typeNames = [...]string{
	Invalid: "INVALID", Bool: "BOOL",
	Int8: "INT8", Int16: "INT16", Int32: "INT32", Int64: "INT64",
	Uint8: "UINT8", Uint16: "UINT16", Uint32: "UINT32", Uint64: "UINT64",
	FP32: "FP32", FP64: "FP64", Bytes: "BYTES", JSON: "JSON",
}

// String returns the V2 name of t.
func (t DataType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("DataType(%d)", t)
}

// ParseDataType returns the type a V2 datatype name stands for, or Invalid.
func ParseDataType(name string) DataType {
	for t, n := range typeNames {
		if n == name && DataType(t) != Invalid && DataType(t) != JSON {
			return DataType(t)
		}
	}
	return Invalid
}

// fromORT maps an ONNX Runtime element type to a DataType, with the V2 name of
// the types mlgate cannot serve for the error message.
func fromORT(t ort.TensorElementDataType) (DataType, string) {
	switch t {
	case ort.TensorElementDataTypeBool:
		return Bool, ""
	case ort.TensorElementDataTypeInt8:
		return Int8, ""
	case ort.TensorElementDataTypeInt16:
		return Int16, ""
	case ort.TensorElementDataTypeInt32:
		return Int32, ""
	case ort.TensorElementDataTypeInt64:
		return Int64, ""
	case ort.TensorElementDataTypeUint8:
		return Uint8, ""
	case ort.TensorElementDataTypeUint16:
		return Uint16, ""
	case ort.TensorElementDataTypeUint32:
		return Uint32, ""
	case ort.TensorElementDataTypeUint64:
		return Uint64, ""
	case ort.TensorElementDataTypeFloat:
		return FP32, ""
	case ort.TensorElementDataTypeDouble:
		return FP64, ""
	case ort.TensorElementDataTypeString:
		return Bytes, ""
	case ort.TensorElementDataTypeFloat16:
		return Invalid, "FP16"
	case ort.TensorElementDataTypeBFloat16:
		return Invalid, "BF16"
	}
	return Invalid, ort.TensorElementDataType(t).String()
}
