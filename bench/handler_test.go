package main

// BenchmarkHandler calls each target's HTTP handler directly, with no network
// and no load generator, so that its ns/op and allocs/op are the server's own
// cost per request. Run it with
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
	"github.com/mlgate/mlgate/serving/onnx"
)

var (
	setupOnce sync.Once
	targetsUp []*target
	setupErr  error
)

// startTargets starts both servers the first time a benchmark needs them, so
// that `go test ./...` without -bench starts nothing.
func startTargets(b *testing.B) []*target {
	setupOnce.Do(func() {
		lib, err := onnx.FindLibrary("")
		if err == nil {
			err = onnx.Init(lib)
		}
		if err != nil {
			setupErr = err
			return
		}
		path := modelzoo.Path(modelzoo.Linear)
		floor, err := startFloor(path)
		if err != nil {
			setupErr = err
			return
		}
		gateway, err := startGateway(path)
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

func TestMain(m *testing.M) {
	code := m.Run()
	for _, t := range targetsUp {
		t.srv.close()
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
				var req fasthttp.Request
				req.SetRequestURI(inferPath)
				req.Header.SetMethod(fasthttp.MethodPost)
				req.Header.SetContentType("application/json")
				req.SetBody(body)
				var ctx fasthttp.RequestCtx
				ctx.Init(&req, nil, nil)
				b.ReportAllocs()
				for b.Loop() {
					ctx.Response.Reset()
					t.srv.handler(&ctx)
					if ctx.Response.StatusCode() != fasthttp.StatusOK {
						b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
					}
				}
			})
		}
	}
}
