package main

// The gRPC load generator: the closed loop of load.go, with ModelInfer calls
// of the V2 protocol (inference.GRPCInferenceService) instead of HTTP POSTs.

import (
	"context"
	"slices"
	"sync"
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

	start := time.Now()
	measureFrom, stopAt := start.Add(l.warmup), start.Add(l.warmup+l.measure)
	perWorker := int(l.measure.Seconds()*200_000)/workers + 1024
	// No deadline on the calls (it would add a grpc-timeout header and a
	// timer on each side); a call still running 30 s after the period is
	// cancelled instead.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watchdog := time.AfterFunc(l.warmup+l.measure+30*time.Second, cancel)
	defer watchdog.Stop()

	tallies := make([]tally, workers)
	meterAt := make(chan *meter, 1)
	time.AfterFunc(l.warmup, func() { meterAt <- startMeter(l.sideCPU) })
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			t := &tallies[w]
			t.latency = make([]time.Duration, 0, perWorker)
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
	wg.Wait()
	r := &result{}
	(<-meterAt).stop(r)
	for _, t := range tallies {
		r.merge(&t)
	}
	r.requests = len(r.latency)
	slices.Sort(r.latency)
	return r
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
