package serving

import (
	"context"
	"reflect"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/mlgate/mlgate/internal/errkind"
	pb "github.com/mlgate/mlgate/serving/grpcv2/inferencepb"
	"github.com/mlgate/mlgate/serving/onnx"
)

// TestCallDeadline checks the deadline a gRPC call runs under: the
// caller's, cut to the maximum, else the server's.
func TestCallDeadline(t *testing.T) {
	tests := []struct {
		name     string
		def, max time.Duration
		caller   time.Duration // 0: none
		want     time.Duration // 0: none
	}{
		{name: "none"},
		{name: "the server's", def: 300 * time.Millisecond, want: 300 * time.Millisecond},
		{name: "the caller's", def: 300 * time.Millisecond, max: time.Second, caller: 50 * time.Millisecond, want: 50 * time.Millisecond},
		{name: "the caller's, longer than the default", def: 300 * time.Millisecond, max: time.Second, caller: 750 * time.Millisecond, want: 750 * time.Millisecond},
		{name: "the caller's, cut to the maximum", def: 300 * time.Millisecond, max: time.Second, caller: time.Minute, want: time.Second},
		{name: "the caller's, no maximum", def: 300 * time.Millisecond, caller: time.Minute, want: time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &Server{opts: Options{RequestTimeout: tt.def, MaxRequestTimeout: tt.max}}
			ctx := context.Background()
			if tt.caller > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.caller)
				defer cancel()
			}
			ctx, cancel := s.callDeadline(ctx)
			defer cancel()
			d, ok := ctx.Deadline()
			if ok != (tt.want > 0) {
				t.Fatalf("deadline set %v, want %v", ok, tt.want > 0)
			}
			if left := time.Until(d); ok && (left > tt.want || tt.want-left > 100*time.Millisecond) {
				t.Errorf("%s left, want about %s", left, tt.want)
			}
		})
	}
}

// FuzzDecodeGRPCInfer: any ModelInferRequest is decoded or refused with an
// error of the caller's kind (invalid, too large); nothing panics, and a
// decoded input's data holds the elements its shape says.
func FuzzDecodeGRPCInfer(f *testing.F) {
	seeds := []*pb.ModelInferRequest{
		{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{1, 2}, Contents: &pb.InferTensorContents{Fp32Contents: []float32{1, 2}}}}},
		{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "INT8", Shape: []int64{2}, Contents: &pb.InferTensorContents{IntContents: []int32{1, 300}}}}},
		{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "s", Datatype: "BYTES", Shape: []int64{1}}}, RawInputContents: [][]byte{{3, 0, 0, 0, 'a', 'b', 'c'}}},
		{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "b", Datatype: "BOOL", Shape: []int64{2}}}, RawInputContents: [][]byte{{0, 2}}},
		{ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{{Name: "u", Datatype: "UINT16", Shape: []int64{1, -1}}},
			Parameters: map[string]*pb.InferParameter{"binary_data_output": {ParameterChoice: &pb.InferParameter_Int64Param{Int64Param: 1}}}},
	}
	for _, s := range seeds {
		b, err := proto.Marshal(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	lim := limits{maxRows: 100, maxElements: 1000, maxString: 64}
	f.Fuzz(func(t *testing.T, b []byte) {
		var req pb.ModelInferRequest
		if proto.Unmarshal(b, &req) != nil {
			return
		}
		r, _, err := decodeGRPCInfer(&req, lim)
		if err != nil {
			if k := errkind.Of(err); k != errkind.Invalid && k != errkind.TooLarge {
				t.Fatalf("error of kind %q: %v", k, err)
			}
			return
		}
		for _, in := range r.Inputs {
			if got, want := int64(reflect.ValueOf(in.Data).Len()), onnx.Elements(in.Shape); got != want {
				t.Fatalf("input %q: %d elements for shape %v", in.Name, got, in.Shape)
			}
		}
	})
}

// BenchmarkDecodeGRPCInfer measures reading a ModelInferRequest of 1 and
// 100 rows of 4 FP32 in raw and in typed contents.
func BenchmarkDecodeGRPCInfer(b *testing.B) {
	lim := limits{maxRows: DefaultMaxRows, maxElements: DefaultMaxTensorElements, maxString: DefaultMaxStringBytes}
	for _, rows := range []int{1, 100} {
		in := &pb.ModelInferRequest_InferInputTensor{Name: "x", Datatype: "FP32", Shape: []int64{int64(rows), 4}}
		typed := &pb.ModelInferRequest_InferInputTensor{Name: "x", Datatype: "FP32", Shape: in.Shape, Contents: &pb.InferTensorContents{Fp32Contents: make([]float32, 4*rows)}}
		for name, req := range map[string]*pb.ModelInferRequest{
			"raw":   {ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{in}, RawInputContents: [][]byte{make([]byte, 16*rows)}},
			"typed": {ModelName: "m", Inputs: []*pb.ModelInferRequest_InferInputTensor{typed}},
		} {
			b.Run(name+"_Rows"+strconv.Itoa(rows), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := decodeGRPCInfer(req, lim); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestDecodeGRPCInferTwice: an input given twice is refused, among few
// inputs (scanned) and among many (a map).
func TestDecodeGRPCInferTwice(t *testing.T) {
	lim := limits{maxRows: 100, maxElements: 1000, maxString: 64}
	for _, n := range []int{2, fewInputs, fewInputs + 1, 100} {
		req := &pb.ModelInferRequest{ModelName: "m"}
		for i := range n {
			name := "in" + strconv.Itoa(i)
			if i == n-1 {
				name = "in0"
			}
			req.Inputs = append(req.Inputs, &pb.ModelInferRequest_InferInputTensor{Name: name, Datatype: "FP32", Shape: []int64{1},
				Contents: &pb.InferTensorContents{Fp32Contents: []float32{1}}})
		}
		if _, _, err := decodeGRPCInfer(req, lim); err == nil || err.Error() != `input "in0": given twice` {
			t.Errorf("%d inputs, the last named as the first: %v", n, err)
		}
	}
}
