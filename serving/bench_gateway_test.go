package serving_test

import (
	"fmt"
	"net"
	"testing"

	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/serving"
	pb "github.com/mlgate/mlgate/serving/grpcv2/inferencepb"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"
)

// BenchmarkInfer measures a whole V2 inference through the server: HTTP
// parsing, routing, auth, decoding, the catalog, ONNX Runtime and encoding,
// over an in-memory connection so that no socket noise is counted.
func BenchmarkInfer(b *testing.B) {
	g := startGateway(b)
	g.register("linear", modelzoo.Linear)
	srv := g.catalogServer(b)
	for _, rows := range []int{1, 100} {
		b.Run(fmt.Sprintf("Linear_Rows%d", rows), func(b *testing.B) {
			body := serving.LinearRequest(b, rows)
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
	srv := serving.New(serving.Options{MaxBodyBytes: 1 << 20, Version: "bench"}, serving.Deps{Registry: g.reg, Catalog: g.catalog, Features: g.features, Auth: g.authn, Log: g.log})
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Shutdown(b.Context()) })
	return &fasthttp.HostClient{Addr: "mlgate", Dial: func(string) (net.Conn, error) { return ln.Dial() }}
}

// BenchmarkGRPCInfer measures a whole V2 ModelInfer over gRPC through the
// gateway (the gate, decoding, the pipeline, ONNX Runtime, the answer),
// with raw contents as tritonclient sends them, over loopback.
func BenchmarkGRPCInfer(b *testing.B) {
	g := startGateway(b)
	g.register("linear", modelzoo.Linear)
	client, _ := g.grpcClient()
	for _, rows := range []int{1, 100} {
		b.Run(fmt.Sprintf("Linear_Rows%d", rows), func(b *testing.B) {
			req := &pb.ModelInferRequest{ModelName: "linear",
				Inputs:           []*pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "FP32", Shape: []int64{int64(rows), 4}}},
				RawInputContents: [][]byte{make([]byte, 16*rows)}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := client.ModelInfer(b.Context(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
