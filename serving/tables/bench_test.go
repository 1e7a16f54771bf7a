package tables

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// benchRow is a prediction of typical size: about 600 bytes of JSON text.
func benchRow(i int) Row {
	r := row(i, fmt.Sprintf("endpoint-%d", i%4), "churn-xgb", t0.Add(time.Duration(i)*time.Millisecond))
	r.Features = `{"user:age":37,"user:country":"FR","user:tenure_days":412,"user:plan":"pro","txn:count_7d":12,"txn:sum_7d":1834.25,"txn:avg_30d":97.5}`
	r.Request = `{"entities":{"user_id":"u-84c2f1"},"overrides":{"txn:count_7d":12},"params":{"threshold":0.5,"explain":false}}`
	r.Response = `{"outputs":[{"name":"probabilities","shape":[1,2],"data":[0.27,0.73]}],"model_version":3}`
	return r
}

// sink drains the queue in place of the (paused) writer goroutine, so that
// a benchmark measures the enqueue alone.
func sink(b *testing.B, w *Writer) (stop func()) {
	resume := pause(b, w)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			select {
			case <-w.q:
			case <-done:
				return
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
		resume()
	}
}

// BenchmarkWrite is the cost of Write to the caller: the enqueue.
func BenchmarkWrite(b *testing.B) {
	w := open(b, Options{Dir: b.TempDir()})
	stop := sink(b, w)
	defer stop()
	r := benchRow(1)
	b.ReportAllocs()
	for b.Loop() {
		w.Write(r)
	}
}

// BenchmarkWrite_Parallel is the enqueue from GOMAXPROCS goroutines at once.
func BenchmarkWrite_Parallel(b *testing.B) {
	w := open(b, Options{Dir: b.TempDir()})
	stop := sink(b, w)
	defer stop()
	r := benchRow(1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Write(r)
		}
	})
}

// BenchmarkWrite_QueueFullSpill is the cost of Write when the queue is full
// and the row goes to the spill file.
func BenchmarkWrite_QueueFullSpill(b *testing.B) {
	w := open(b, Options{Dir: b.TempDir(), QueueSize: 1, Spill: true})
	resume := pause(b, w)
	defer resume()
	r := benchRow(1)
	w.Write(r)
	b.ReportAllocs()
	for b.Loop() {
		w.Write(r)
	}
	b.StopTimer()
	if st := w.Stats(); st.Dropped != 0 {
		b.Fatalf("dropped %d rows", st.Dropped)
	}
}

// BenchmarkWriter_Throughput is how many rows a second the writer goroutine
// turns into Parquet files (log, encoding, compression, rename), over 4
// partitions: the rows are queued first, then timed from the queue to
// renamed files.
func BenchmarkWriter_Throughput(b *testing.B) {
	dir := b.TempDir()
	w := open(b, Options{Dir: dir, QueueSize: b.N})
	resume := pause(b, w)
	for i := range b.N {
		w.Write(benchRow(i % 1024))
	}
	b.ReportAllocs()
	b.ResetTimer()
	resume()
	if err := w.Flush(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	st := w.Stats()
	if st.Written != int64(b.N) {
		b.Fatalf("wrote %d rows of %d (%+v)", st.Written, b.N, st)
	}
	files, err := List(dir)
	if err != nil {
		b.Fatal(err)
	}
	var bytes int64
	for _, f := range files {
		bytes += f.Bytes
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(bytes)/float64(b.N), "parquet-B/row")
}
