package main

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/testservers"
)

// Phases of TestTablesSurviveIOFault, in the request ids.
var faultPhases = []string{"before", "during", "after"}

// TestTablesSurviveIOFault loads a real mlgate process with predictions,
// makes its inference table immutable for 3 s (chattr -R +i: every write
// fails with EPERM, through open files too), makes it writable again, and
// kills the process with SIGKILL a few flush intervals after the load
// stops. After a restart, every prediction sent after the fault cleared has
// its row. Readiness stayed 200 throughout and named the fault while it
// lasted. Before, the write-ahead log kept its first error: 70% of the rows
// answered were lost, with no log line and no failure counted.
func TestTablesSurviveIOFault(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gateway process under load")
	}
	testservers.RequireImmutable(t)
	python := testservers.Python(t)
	const flush = 200 * time.Millisecond
	t.Setenv("MLGATE_INFERENCE_TABLES_FLUSH_INTERVAL", flush.String())
	bin, dataDir, cmd, server := serveLinear(t)

	var phase atomic.Int32
	answered := make([]atomic.Int64, len(faultPhases))
	var failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := phase.Load()
				body := fmt.Sprintf(`{"request_id": "%s-%d-%d", "inputs": {"x": [[1, 2, 3, 4]]}}`, faultPhases[p], w, i)
				if post(t, server+"/v1/models/linear/predict", body) == 200 {
					answered[p].Add(1)
				} else {
					failed.Add(1)
				}
			}
		})
	}
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()

	inference := filepath.Join(dataDir, "inference")
	time.Sleep(time.Second) // load before the fault
	testservers.Immutable(t, inference, true)
	phase.Store(1)
	deadline := time.Now().Add(3 * time.Second)
	sawDegraded := false
	for time.Now().Before(deadline) {
		status, body := readyBody(t, server)
		if status != 200 {
			t.Errorf("ready during the fault: %d %s, want 200", status, body)
		}
		sawDegraded = sawDegraded || strings.Contains(body, `"degraded":["inference tables: `)
		time.Sleep(flush)
	}
	testservers.Immutable(t, inference, false)
	phase.Store(2)
	if !sawDegraded {
		t.Error("readiness never said the inference tables were degraded during the fault")
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(flush) {
		if _, body := readyBody(t, server); body == `{"ready":true}` {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("readiness still degraded 10 s after the fault cleared")
		}
	}
	time.Sleep(2 * time.Second) // load after the fault
	close(stop)
	wg.Wait()
	time.Sleep(3 * flush) // the rows answered are durable a flush interval later
	crashAndReplay(t, cmd, bin, dataDir, server)
	got := idsByPhase(t, python, inference)
	var report []string
	for p, name := range faultPhases {
		report = append(report, fmt.Sprintf("%s the fault: %d of %d", name, got[name], answered[p].Load()))
	}
	t.Logf("rows after kill -9 and a restart: %s; %d predictions failed", strings.Join(report, ", "), failed.Load())
	if n := answered[2].Load(); n == 0 || int64(got["after"]) != n {
		t.Errorf("%d rows of the %d predictions answered after the fault cleared, want all", got["after"], n)
	}
	if failed.Load() != 0 {
		t.Errorf("%d predictions failed", failed.Load())
	}
}

func readyBody(t *testing.T, server string) (int, string) {
	t.Helper()
	resp, err := http.Get(server + "/v2/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

// idsByPhase reads the inference table under root with pyarrow and counts
// the distinct request ids of each phase (the id's prefix).
func idsByPhase(t *testing.T, python, root string) map[string]int {
	t.Helper()
	script := `
import collections, glob, os, sys
import pyarrow.parquet as pq
root = sys.argv[1]
ids = set()
for f in glob.glob(os.path.join(root, "**", "*.parquet"), recursive=True):
    if "/_" in f[len(root):] or os.path.basename(f).startswith("."):
        continue
    ids.update(pq.read_table(f, columns=["request_id"]).column("request_id").to_pylist())
for phase, n in collections.Counter(i.split("-")[0] for i in ids).items():
    print(phase, n)
`
	out, err := exec.Command(python, "-c", script, root).CombinedOutput()
	if err != nil {
		t.Fatalf("pyarrow: %v\n%s", err, out)
	}
	got := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var phase string
		var n int
		if _, err := fmt.Sscan(line, &phase, &n); err == nil {
			got[phase] = n
		}
	}
	return got
}
