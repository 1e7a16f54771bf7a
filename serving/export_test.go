package serving

import (
	"context"
	"testing"

	"github.com/mlgate/mlgate/serving/onnx"
)

// What the tests of package serving_test, which start mlgate through the
// composition root, need of the server's insides.

// ShadowQueue and RecorderQueue are how many shadow copies and observations
// may wait before more are dropped.
const (
	ShadowQueue   = shadowQueue
	RecorderQueue = recorderQueue
)

// SetShadowRunnerForTest makes run, instead of the shadow model, answer
// every shadow copy s sends from now on.
func (s *Server) SetShadowRunnerForTest(run func() error) {
	s.shadows.close(0)
	s.shadows = newShadows(func(*observation) error { return run() }, s.observe, s.opts.Breaker, s.log)
}

// SetRecorderForTest makes record, instead of the tables and the monitors,
// take every observation s records from now on; it is to be called before
// s serves.
func (s *Server) SetRecorderForTest(record func()) {
	s.recorder.close(context.Background())
	s.recorder = newRecorder(func(*observation) { record() }, s.log)
}

// Refs is how many holders the session of l has: the catalog and the
// requests.
func (l *Loaded) Refs() int64 { return l.refs.Load() }

// LinearRequest is a V2 inference request of rows rows for linear.onnx.
func LinearRequest(b *testing.B, rows int) []byte { return linearRequest(b, rows) }

// RunBatched runs inputs as the pipeline does: through the version's
// batcher when it has one.
func (l *Loaded) RunBatched(ctx context.Context, inputs []onnx.Tensor) ([]onnx.Tensor, error) {
	out, _, err := l.run(ctx, inputs)
	return out, err
}
