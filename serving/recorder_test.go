package serving_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/telemetry"
	"github.com/mlgate/mlgate/serving"
)

// TestRecorderNeverHoldsCallers holds the recorder up for good, as a drift
// monitor whose webhook never answers or a stuck disk would: every request
// is still answered, those past the recorder's queue are dropped, and the
// drops are counted in mlgate_recorder_dropped_total. Were a caller to wait
// on the recorder, the first request past the queue would never return.
func TestRecorderNeverHoldsCallers(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	metrics, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	srv := serving.New(serving.Options{MaxBodyBytes: 1 << 20}, serving.Deps{Registry: g.reg, Catalog: g.catalog, Auth: g.authn, Log: g.log, Metrics: metrics.Handler()})
	if err := srv.RegisterMetrics(metrics.Meter("serving")); err != nil {
		t.Fatal(err)
	}
	held, release := make(chan struct{}, 1), make(chan struct{})
	srv.SetRecorderForTest(func() {
		select {
		case held <- struct{}{}:
		default:
		}
		<-release
	})
	defer close(release)

	const extra = 100
	body := []byte(`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`)
	infer := func() {
		resp, err := srv.App().Test(httptest.NewRequest("POST", "/v2/models/linear/infer", bytes.NewReader(body)), -1)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("infer with the recorder held up: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	infer()
	<-held // the recorder is stuck in its first observation
	for range serving.RecorderQueue + extra {
		infer()
	}
	resp, err := srv.App().Test(httptest.NewRequest("GET", "/metrics", nil), int(time.Minute/time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	text.ReadFrom(resp.Body)
	if want := fmt.Sprint("mlgate_recorder_dropped_total ", extra); !strings.Contains(text.String(), want) {
		t.Errorf("/metrics lacks %s (the queue holds %d)", want, serving.RecorderQueue)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := srv.FlushRecords(ctx); err == nil {
		t.Error("a flush of the held-up recorder returned before the deadline")
	}
}
