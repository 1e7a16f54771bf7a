package main

// The gRPC load generator: the closed loop of load.go, with ModelInfer calls
// of the V2 protocol (inference.GRPCInferenceService) instead of HTTP POSTs.

import (
	"context"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	pb "github.com/mlgate/mlgate/serving/grpcv2/inferencepb"
)

// grpcLoad is what a gRPC load sends: the requests, in turn.
type grpcLoad struct {
	requests []*pb.ModelInferRequest
	// conns is how many connections (grpc.ClientConn) the workers share, in
	// turn: 0 for one per worker. See -grpc-conns.
	conns int
}

// sizes describes the requests' sizes on the wire (the protobuf message).
func (g *grpcLoad) sizes() string {
	bodies := make([][]byte, len(g.requests))
	for i, req := range g.requests {
		bodies[i], _ = proto.Marshal(req)
	}
	return sizes(bodies) + " (protobuf)"
}

// dialGRPC returns a client connection to addr, without TLS. It connects on
// the first call.
func dialGRPC(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// grpcClosedLoop runs `workers` clients against the gRPC server at addr, each
// calling ModelInfer as soon as its previous answer arrived, on l.grpc.conns
// shared connections (or one each). Only calls made after the warm-up count
// towards throughput and latency. A call counts as answered when it returns
// no error; the scenarios check the answers' contents before the load.
func grpcClosedLoop(addr string, l load, workers int) *result {
	n := l.grpc.conns
	if n <= 0 || n > workers {
		n = workers
	}
	clients := make([]pb.GRPCInferenceServiceClient, n)
	for i := range clients {
		conn, err := dialGRPC(addr)
		if err != nil {
			return &result{errors: 1, firstErr: err.Error(), elapsed: l.measure, sideCPU: -1, others: -1}
		}
		defer conn.Close()
		clients[i] = pb.NewGRPCInferenceServiceClient(conn)
	}

	// No deadline on the calls (it would add a grpc-timeout header and a
	// timer on each side); a call still running 30 s after the period is
	// cancelled instead.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watchdog := time.AfterFunc(l.warmup+l.measure+30*time.Second, cancel)
	defer watchdog.Stop()
	return runWorkers(l, workers, func(w int, t *tally, measureFrom, stopAt time.Time) {
		client := clients[w%n]
		reqs := make([]*pb.ModelInferRequest, len(l.grpc.requests))
		for i, req := range l.grpc.requests {
			reqs[i] = proto.Clone(req).(*pb.ModelInferRequest)
		}
		// Worker w sends requests w, w+workers, w+2·workers...
		for b := w % len(reqs); ; b = (b + workers) % len(reqs) {
			sent := time.Now()
			if !sent.Before(stopAt) {
				return
			}
			_, err := client.ModelInfer(ctx, reqs[b])
			took := time.Since(sent)
			if t.okGRPC(err) && !sent.Before(measureFrom) {
				t.latency = append(t.latency, took)
			}
		}
	})
}

// okGRPC counts a call done and says whether it succeeded.
func (t *tally) okGRPC(err error) bool {
	if err == nil {
		t.answered++
		return true
	}
	t.errors++
	if t.firstErr == "" {
		t.firstErr = err.Error()
	}
	return false
}
