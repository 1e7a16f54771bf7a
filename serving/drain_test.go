package serving_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/modelzoo"
)

// TestShutdownClosesKeepAliveCleanly stops a server with no drain delay
// under load from keep-alive connections: no request sent on a connection
// used before (a keep-alive one) fails; the server says Connection: close on
// its last answer on it instead of closing it under the next request, which
// would leave the caller unsure whether it was served. A request on a new
// connection may still fail to connect, or be reset in the closing
// listener's backlog: that is TCP's, whatever the server does.
func TestShutdownClosesKeepAliveCleanly(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	body := []byte(`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8, DisableCompression: true}, Timeout: 10 * time.Second}
	var answered, refused atomic.Int64
	var mu sync.Mutex
	var failed []error
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				var reused bool
				trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
				req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
					"POST", g.url+"/v2/models/linear/infer", bytes.NewReader(body))
				resp, err := client.Do(req)
				switch {
				case err == nil:
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					answered.Add(1)
				case !reused:
					refused.Add(1)
				default:
					mu.Lock()
					failed = append(failed, err)
					mu.Unlock()
				}
			}
		})
	}
	for answered.Load() < 200 {
		time.Sleep(time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.server.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	for refused.Load() < 8 {
		time.Sleep(time.Millisecond)
	}
	close(stop)
	wg.Wait()
	t.Logf("%d answered, %d failed on new connections after the shutdown", answered.Load(), refused.Load())
	if len(failed) > 0 {
		t.Errorf("%d requests on keep-alive connections failed, first: %v", len(failed), failed[0])
	}
}

// TestShutdownWithASpareConnection stops a server that a client has
// connected to without sending a request, as a load balancer's pool or an
// HTTP client's spare dial does: Shutdown closes that connection and
// returns, rather than wait for read_timeout (fasthttp counts a connection
// waiting for its first request as busy), which would hold the inference
// tables' last rows until the shutdown deadline had passed.
func TestShutdownWithASpareConnection(t *testing.T) {
	g := startGateway(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(g.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// read_timeout is 30s by default: a Shutdown that waits for the spare
	// connection runs out of this context.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := g.server.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown with a spare connection open: %v", err)
	}
	conn.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := io.ReadAll(conn); err != nil {
		t.Errorf("the spare connection is not closed after Shutdown: %v", err)
	}
}
