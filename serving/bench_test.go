package serving

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/mlgate/mlgate/serving/onnx"
)

func linearRequest(b *testing.B, rows int) []byte {
	b.Helper()
	data := make([]float32, rows*4)
	for i := range data {
		data[i] = float32(i) * 0.25
	}
	raw, err := json.Marshal(map[string]any{"id": "bench", "inputs": []map[string]any{{"name": "x", "shape": []int64{int64(rows), 4}, "datatype": "FP32", "data": data}}})
	if err != nil {
		b.Fatal(err)
	}
	return raw
}

func BenchmarkDecodeInferRequest(b *testing.B) {
	benchmarkDecode(b, decodeInferRequest)
}

// BenchmarkDecodeWireRequest measures the reference decoder, which
// decodeInferRequest leaves the requests its one-pass scan declines.
func BenchmarkDecodeWireRequest(b *testing.B) {
	benchmarkDecode(b, decodeWireRequest)
}

func benchmarkDecode(b *testing.B, decode func([]byte, limits) (*inferRequest, error)) {
	for _, rows := range []int{1, 100} {
		b.Run(fmt.Sprintf("Rows%d", rows), func(b *testing.B) {
			body := linearRequest(b, rows)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := decode(body, defaultLimits); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodeInferResponse(b *testing.B) {
	for _, rows := range []int{1, 100} {
		b.Run(fmt.Sprintf("Rows%d", rows), func(b *testing.B) {
			r := &inferResponse{Model: "linear", Version: 1, ID: "bench", Outputs: []onnx.Tensor{
				{Name: "y", Type: onnx.FP32, Shape: []int64{int64(rows), 2}, Data: make([]float32, rows*2)},
			}}
			for i := range r.Outputs[0].Data.([]float32) {
				r.Outputs[0].Data.([]float32)[i] = float32(i) / 3
			}
			buf := make([]byte, 0, 4096)
			b.ReportAllocs()
			for b.Loop() {
				buf = encodeInferResponse(buf[:0], r)
			}
		})
	}
}
