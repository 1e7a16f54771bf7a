package serving_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
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
