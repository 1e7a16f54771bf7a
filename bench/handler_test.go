package main

// BenchmarkHandler and BenchmarkPredictHandler call each target's HTTP
// handler directly, with no network and no load generator, so that its ns/op
// and allocs/op are the server's own cost per request (for the predict
// scenarios, with a real Redis round trip; they skip without TEST_REDIS_ADDR).
// Run them with
//
//	go test ./bench -run '^$' -bench Handler -benchmem -cpuprofile cpu.out
//
// and compare the two targets' profiles with `go tool pprof`.

import (
	"fmt"
	"os"
	"sync"
	"testing"

	"github.com/valyala/fasthttp"

	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/testservers"
	"github.com/mlgate/mlgate/serving/onnx"
)

var (
	ortOnce sync.Once
	ortErr  error

	setupOnce sync.Once
	targetsUp []*target
	setupErr  error

	endpointOnce sync.Once
	endpointUp   *scenario
	endpointErr  error

	// The predict scenarios, by name.
	predictOnce sync.Once
	predictUp   = map[string]*scenario{}
	predictErr  error
)

// initORT loads ONNX Runtime once.
func initORT(b *testing.B) {
	ortOnce.Do(func() {
		lib, err := onnx.FindLibrary("")
		if err == nil {
			err = onnx.Init(lib)
		}
		ortErr = err
	})
	if ortErr != nil {
		b.Fatal(ortErr)
	}
}

// startTargets starts both servers the first time a benchmark needs them, so
// that `go test ./...` without -bench starts nothing.
func startTargets(b *testing.B) []*target {
	initORT(b)
	setupOnce.Do(func() {
		path := modelzoo.Path(modelzoo.Linear)
		floor, err := startFloor(path)
		if err != nil {
			setupErr = err
			return
		}
		gateway, err := startLinearGateway(path)
		if err != nil {
			floor.close()
			setupErr = err
			return
		}
		targetsUp = []*target{{name: "floor", srv: floor}, {name: "mlgate", srv: gateway}}
	})
	if setupErr != nil {
		b.Fatal(setupErr)
	}
	return targetsUp
}

// startPredictTargets sets up both predict scenarios the first time a
// benchmark needs them.
func startPredictTargets(b *testing.B) map[string]*scenario {
	testservers.Redis(b) // skips without TEST_REDIS_ADDR
	initORT(b)
	predictOnce.Do(func() {
		cfg := options{users: 10000, concurrency: 1, rate: 1}
		for _, pc := range []predictCase{predict1x10, predict100x50} {
			sc, err := startPredict(cfg, pc)
			if err != nil {
				predictErr = err
				return
			}
			predictUp[pc.name] = sc
		}
	})
	if predictErr != nil {
		b.Fatal(predictErr)
	}
	return predictUp
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, t := range targetsUp {
		t.srv.close()
	}
	for _, sc := range predictUp {
		sc.close()
	}
	if endpointUp != nil {
		endpointUp.close()
	}
	os.Exit(code)
}

func BenchmarkHandler(b *testing.B) {
	for _, rows := range []int{1, 100} {
		body, want := request(rows)
		for _, t := range startTargets(b) {
			b.Run(fmt.Sprintf("rows=%d/%s", rows, t.name), func(b *testing.B) {
				if err := check(t.srv.addr, body, want); err != nil {
					b.Fatal(err)
				}
				benchmarkHandler(b, t.srv.handler, inferPath, [][]byte{body})
			})
		}
	}
}

// BenchmarkEndpointHandler is BenchmarkHandler for the endpoint-predict
// scenario: model predict, then the same request through the endpoint (the
// units in turn), on one mlgate.
func BenchmarkEndpointHandler(b *testing.B) {
	initORT(b)
	endpointOnce.Do(func() {
		endpointUp, endpointErr = startEndpoint(options{concurrency: 1})
	})
	if endpointErr != nil {
		b.Fatal(endpointErr)
	}
	for _, t := range endpointUp.targets {
		b.Run(t.name, func(b *testing.B) {
			l := endpointUp.loadOf(t)
			benchmarkHandler(b, t.srv.handler, l.path, l.bodies)
		})
	}
}

// BenchmarkPredictHandler is BenchmarkHandler for the predict scenarios:
// each call reads the features of a request's entities from Redis (the
// requests in turn, over the 10,000 users).
func BenchmarkPredictHandler(b *testing.B) {
	for _, pc := range []predictCase{predict1x10, predict100x50} {
		sc := startPredictTargets(b)[pc.name]
		for _, t := range sc.targets {
			b.Run(pc.name+"/"+t.name, func(b *testing.B) {
				benchmarkHandler(b, t.srv.handler, pc.path(), sc.load.bodies)
			})
		}
	}
}

// benchmarkHandler calls handler with a POST of the bodies in turn to path.
func benchmarkHandler(b *testing.B, handler fasthttp.RequestHandler, path string, bodies [][]byte) {
	var req fasthttp.Request
	req.SetRequestURI(path)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.Header.SetContentType("application/json")
	var ctx fasthttp.RequestCtx
	ctx.Init(&req, nil, nil)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		ctx.Request.SetBodyRaw(bodies[i%len(bodies)])
		i++
		ctx.Response.Reset()
		handler(&ctx)
		if ctx.Response.StatusCode() != fasthttp.StatusOK {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}
