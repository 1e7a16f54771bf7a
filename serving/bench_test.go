package serving

import (
	"encoding/json"
	"fmt"
	"net"
	"testing"

	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/serving/onnx"
)

func linearRequest(b *testing.B, rows int) []byte {
	b.Helper()
	data := make([]float32, rows*4)
	for i := range data {
		data[i] = float32(i) * 0.25
	}
	raw, err := json.Marshal(map[string]any{"id": "bench", "inputs": []v2Input{{"x", []int64{int64(rows), 4}, "FP32", data}}})
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

// BenchmarkInfer measures a whole V2 inference through the server: HTTP
// parsing, routing, auth, decoding, the catalog, ONNX Runtime and encoding,
// over an in-memory connection so that no socket noise is counted.
func BenchmarkInfer(b *testing.B) {
	g := startGateway(b)
	g.register("linear", modelzoo.Linear)
	srv := g.catalogServer(b)
	for _, rows := range []int{1, 100} {
		b.Run(fmt.Sprintf("Linear_Rows%d", rows), func(b *testing.B) {
			body := linearRequest(b, rows)
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			req.SetRequestURI("http://mlgate/v2/models/linear/infer")
			req.Header.SetMethod(fasthttp.MethodPost)
			req.SetBody(body)
			b.ReportAllocs()
			for b.Loop() {
				if err := srv.Do(req, resp); err != nil || resp.StatusCode() != 200 {
					b.Fatalf("%v %d %s", err, resp.StatusCode(), resp.Body())
				}
			}
		})
	}
}

// catalogServer serves a second Server over g's registry and catalog on an
// in-memory listener and returns a client for it.
func (g *gateway) catalogServer(b *testing.B) *fasthttp.HostClient {
	ln := fasthttputil.NewInmemoryListener()
	srv := New(Options{MaxBodyBytes: 1 << 20, Version: "bench"}, Deps{Registry: g.reg, Catalog: g.catalog, Features: g.features, Auth: g.authn, Log: g.log})
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Shutdown(b.Context()) })
	return &fasthttp.HostClient{Addr: "mlgate", Dial: func(string) (net.Conn, error) { return ln.Dial() }}
}
