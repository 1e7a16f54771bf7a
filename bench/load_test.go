package main

import (
	"math"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// TestOpenLoopCountsFromTheSchedule stalls a server for its first 100 ms and
// checks that the open loop kept sending on schedule and charged the stall to
// every request scheduled during it, not just to the first one, as a closed
// loop would (coordinated omission).
func TestOpenLoopCountsFromTheSchedule(t *testing.T) {
	const stall = 100 * time.Millisecond
	var once sync.Once
	gate := make(chan struct{})
	srv := &fasthttp.Server{Handler: func(ctx *fasthttp.RequestCtx) {
		once.Do(func() { time.AfterFunc(stall, func() { close(gate) }) })
		<-gate
		ctx.SetBodyString("{}")
	}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Shutdown()

	l := load{path: "/", bodies: [][]byte{[]byte("{}")}, measure: 300 * time.Millisecond}
	r := openLoop([]string{ln.Addr().String()}, l, 1000, 512)
	if r.errors != 0 || r.requests != 300 {
		t.Fatalf("%d answered, %d errors (first: %s), want 300 and 0", r.requests, r.errors, r.firstErr)
	}
	slow := 0
	for _, d := range r.latency {
		if d >= 20*time.Millisecond {
			slow++
		}
	}
	// The requests scheduled in the stall's first 80 ms waited at least 20 ms.
	if slow < 40 || r.percentile(1) < stall*9/10 {
		t.Errorf("%d requests took 20 ms or more, the slowest %s; want about 80, and about %s", slow, r.percentile(1), stall)
	}
	if r.offered != 1000 || r.elapsed != l.measure || math.Abs(r.throughput()-1000) > 1e-6 {
		t.Errorf("offered %v/s over %s", r.offered, r.elapsed)
	}
}
