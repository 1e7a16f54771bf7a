package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/mlgate/mlgate/serving/grpcv2/inferencepb"
)

// echoInfer answers every ModelInfer after a short pause, and refuses the
// ones for model "bad".
type echoInfer struct {
	pb.UnimplementedGRPCInferenceServiceServer
	calls atomic.Int64
}

func (e *echoInfer) ModelInfer(_ context.Context, req *pb.ModelInferRequest) (*pb.ModelInferResponse, error) {
	e.calls.Add(1)
	time.Sleep(time.Millisecond)
	if req.ModelName == "bad" {
		return nil, status.Error(codes.InvalidArgument, "bad model")
	}
	return &pb.ModelInferResponse{ModelName: req.ModelName, RawOutputContents: req.RawInputContents}, nil
}

// TestGRPCClosedLoop checks that the gRPC closed loop counts its calls, on a
// shared connection and on one per worker, that each worker waits for its
// answer (a 1 ms server, 4 workers: at most about 4 calls a millisecond),
// and that it counts refused calls as errors with the first one's message.
func TestGRPCClosedLoop(t *testing.T) {
	srv := &echoInfer{}
	s := grpc.NewServer()
	pb.RegisterGRPCInferenceServiceServer(s, srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	defer s.Stop()
	addr := ln.Addr().String()

	for _, conns := range []int{1, 0} {
		srv.calls.Store(0)
		req := grpcRequest("linear", "", []float32{1, 2, 3, 4}, 4)
		l := load{grpc: &grpcLoad{requests: []*pb.ModelInferRequest{req}, conns: conns}, warmup: 50 * time.Millisecond, measure: 200 * time.Millisecond}
		r := grpcClosedLoop(addr, l, 4)
		if r.errors != 0 || r.requests < 50 {
			t.Fatalf("conns %d: %d answered in the period, %d errors (first: %s); want at least 50 and none", conns, r.requests, r.errors, r.firstErr)
		}
		if calls := srv.calls.Load(); int64(r.answered) != calls || r.requests >= r.answered {
			t.Errorf("conns %d: %d answered, %d measured, the server had %d calls", conns, r.answered, r.requests, calls)
		}
		if r.requests > 4*250 || r.throughput() > 4*1000*1.1 {
			t.Errorf("conns %d: %d calls in %s; the workers did not wait for their answers", conns, r.requests, r.elapsed)
		}
		if !slices.IsSorted(r.latency) || r.percentile(0.5) < time.Millisecond {
			t.Errorf("conns %d: latency p50 %s, sorted %v; want at least the server's 1 ms", conns, r.percentile(0.5), slices.IsSorted(r.latency))
		}
	}

	bad := grpcRequest("bad", "", []float32{1, 2, 3, 4}, 4)
	l := load{grpc: &grpcLoad{requests: []*pb.ModelInferRequest{bad}, conns: 1}, measure: 50 * time.Millisecond}
	r := grpcClosedLoop(addr, l, 2)
	if r.requests != 0 || r.errors == 0 || r.firstErr == "" {
		t.Errorf("refused calls: %d answered, %d errors (first: %q); want 0 and some", r.requests, r.errors, r.firstErr)
	}
}

// TestBatchEncodings checks that batch100's three encodings carry the same
// values: the JSON body's data, the binary body after its JSON, and the gRPC
// request's raw contents.
func TestBatchEncodings(t *testing.T) {
	x, body, want := featureRows(batch100Rows)
	if len(x) != 4*batch100Rows || len(want) != 2*batch100Rows {
		t.Fatalf("%d values and %d answers", len(x), len(want))
	}
	var req floorRequest
	if err := json.Unmarshal(body, &req); err != nil {
		t.Fatal(err)
	}
	if len(req.Inputs) != 1 || fmt.Sprint(req.Inputs[0].Shape) != "[100 4]" || !slices.Equal(req.Inputs[0].Data, x) {
		t.Errorf("the JSON request does not hold x: %.200s", body)
	}
	bin, n := binaryRequest(x, 4)
	var head struct {
		Inputs []struct {
			Shape      []int64 `json:"shape"`
			Parameters struct {
				Size int `json:"binary_data_size"`
			} `json:"parameters"`
		} `json:"inputs"`
	}
	if err := json.Unmarshal(bin[:n], &head); err != nil {
		t.Fatal(err)
	}
	got, err := bytesFloat32(bin[n:])
	if err != nil || len(head.Inputs) != 1 || head.Inputs[0].Parameters.Size != len(bin)-n || !slices.Equal(got, x) {
		t.Errorf("the binary request does not hold x: %s + %d bytes (%v)", bin[:n], len(bin)-n, err)
	}
	g := grpcRequest(modelName, "", x, 4)
	if got, err := bytesFloat32(g.RawInputContents[0]); err != nil || !slices.Equal(got, x) || fmt.Sprint(g.Inputs[0].Shape) != "[100 4]" {
		t.Errorf("the gRPC request does not hold x: shape %v (%v)", g.Inputs[0].Shape, err)
	}
	if !near(want, want) || near(want, want[1:]) {
		t.Error("near")
	}
}
