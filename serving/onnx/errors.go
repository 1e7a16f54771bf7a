package onnx

import (
	"strings"

	"github.com/mlgate/mlgate/internal/errkind"
)

// ErrInput is matched (errors.Is) by the error of a Run that failed because
// of its inputs: ONNX Runtime refused them against the model's declared
// inputs (a rank, a dimension or an element type it does not take), or a
// node found an index in them out of the range it looks up (a category id
// past the end of an embedding table, say). It is of kind errkind.Invalid.
//
// Every other failure of Run is the model's or ONNX Runtime's own: a shape
// the model's graph cannot reconcile, memory, a kernel that throws. Those
// errors match neither ErrInput nor any errkind kind.
var ErrInput = errkind.New(errkind.Invalid, "the model cannot run on this input")

// inputFaults are what ONNX Runtime says when a run fails because of its
// inputs. Its Go binding passes on a failure's message but not its
// OrtErrorCode, so the message is all there is to go by.
var inputFaults = []string{
	// The session's check of the feeds against the model's declared inputs
	// (ORT_INVALID_ARGUMENT).
	"Invalid rank for input: ",
	"Got invalid dimensions for input: ",
	"Unexpected input data type.",
	// An index out of range: Gather, Scatter and ScatterElements; GatherND
	// and ScatterND (both ORT_INVALID_ARGUMENT); GatherElements (thrown).
	"indices element out of data bounds",
	"invalid indice found",
	"Out of range value in index tensor",
}

// runError returns the error of a failed run: ONNX Runtime's, with its
// message as it is, made to match ErrInput when one of inputFaults caused
// it. A node's failure is judged by its status message alone, not by the
// node's name, which the model chose.
func runError(err error) error {
	msg := err.Error()
	judged := msg
	if _, status, ok := strings.Cut(msg, "Status Message: "); ok {
		judged = status
	}
	for _, f := range inputFaults {
		if strings.Contains(judged, f) {
			return errkind.New(ErrInput, "%s", msg)
		}
	}
	return err
}
