package serving

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/modelzoo"
)

// TestShutdownClosesKeepAliveCleanly stops a server with no drain delay
// under load from keep-alive connections: every request either is answered
// or finds the listener closed (connection refused); none is sent on a
// connection the server then closes (EOF), which would leave its caller
// unsure whether it was served.
func TestShutdownClosesKeepAliveCleanly(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	body := []byte(`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8, DisableCompression: true}, Timeout: 10 * time.Second}
	var answered, refused atomic.Int64
	var mu sync.Mutex
	var others []error
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
				resp, err := client.Post(g.url+"/v2/models/linear/infer", "application/json", bytes.NewReader(body))
				switch {
				case err == nil:
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					answered.Add(1)
				case errors.Is(err, syscall.ECONNREFUSED):
					refused.Add(1)
				default:
					mu.Lock()
					others = append(others, err)
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
	t.Logf("%d answered, %d refused after the shutdown", answered.Load(), refused.Load())
	if len(others) > 0 {
		t.Errorf("%d requests failed other than by a refused connection, first: %v", len(others), others[0])
	}
}
