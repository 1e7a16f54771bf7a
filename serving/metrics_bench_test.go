package serving

import (
	"context"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/telemetry"
)

// BenchmarkRequestMetrics is what counting and timing one request costs
// its goroutine, for a combination of labels already seen.
func BenchmarkRequestMetrics(b *testing.B) {
	m, err := telemetry.New()
	if err != nil {
		b.Fatal(err)
	}
	var s Server
	s.shadows, s.recorder = &shadows{}, &recorder{}
	if err := s.RegisterMetrics(m.Meter("serving")); err != nil {
		b.Fatal(err)
	}
	l := requestLabels{method: "POST", route: "/v2/models/:model/infer", model: "linear", version: 1, status: 200}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		s.requests.record(ctx, &l, time.Millisecond)
	}
}
