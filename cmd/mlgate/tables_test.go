package main

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/testservers"
)

// buildBinary builds bin/mlgate into a temporary directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "mlgate")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// serveProcess runs `mlgate serve` on dataDir and waits until it is ready.
func serveProcess(t *testing.T, bin, dataDir, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(os.Environ(), "MLGATE_DATA_DIR="+dataDir, "MLGATE_LISTEN="+addr, "MLGATE_LOG_LEVEL=warn")
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return cmd
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mlgate did not become ready:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// serveLinear builds mlgate, runs `mlgate serve` on a new data directory and
// registers linear.onnx as model linear through the CLI.
func serveLinear(t *testing.T) (bin, dataDir string, cmd *exec.Cmd, server string) {
	t.Helper()
	bin = buildBinary(t)
	dataDir, addr := t.TempDir(), freeAddr(t)
	cmd = serveProcess(t, bin, dataDir, addr)
	server = "http://" + addr
	stdout = io.Discard
	t.Cleanup(func() { stdout = os.Stdout })
	if err := run([]string{"models", "register", "--server", server, "--name", "linear", "--file", modelzoo.Path(modelzoo.Linear)}); err != nil {
		t.Fatal(err)
	}
	return bin, dataDir, cmd, server
}

// crashAndReplay kills cmd, a gateway on dataDir serving server, as a crash
// would, then starts it again so that it replays its write-ahead log, and
// stops it with SIGTERM.
func crashAndReplay(t *testing.T, cmd *exec.Cmd, bin, dataDir, server string) {
	t.Helper()
	cmd.Process.Kill()
	cmd.Wait()
	cmd = serveProcess(t, bin, dataDir, strings.TrimPrefix(server, "http://"))
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("restarted mlgate exited with %v", err)
	}
}

func post(t *testing.T, url, body string) int {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Error(err)
		return 0
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestTablesSurviveSIGTERM sends 10,000 predictions under concurrent load to
// a real mlgate process, stops it with SIGTERM, and counts the rows of its
// inference tables with pyarrow, a Parquet reader that is not mlgate's.
func TestTablesSurviveSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gateway process under load")
	}
	python := testservers.Python(t)
	_, dataDir, cmd, server := serveLinear(t)
	req, _ := http.NewRequest("PUT", server+"/v1/endpoints/churn", strings.NewReader(`{"variants": [{"name": "a", "model": "linear/1", "weight": 1}]}`))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 201 {
		t.Fatalf("create endpoint: %v %v", resp, err)
	}

	const total, workers = 10000, 8
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for w := range workers {
		wg.Go(func() {
			for i := w; i < total; i += workers {
				var code int
				switch i % 3 {
				case 0:
					code = post(t, server+"/v1/models/linear/predict", fmt.Sprintf(`{"request_id": "r%d", "inputs": {"x": [[1, 2, 3, %d]]}}`, i, i))
				case 1:
					code = post(t, server+"/v1/endpoints/churn/predict", fmt.Sprintf(`{"request_id": "r%d", "unit": "u%d", "inputs": {"x": [[1, 2, 3, 4]]}}`, i, i))
				default:
					code = post(t, server+"/v2/models/linear/infer", fmt.Sprintf(`{"id": "r%d", "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}`, i))
				}
				if code != 200 {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if failed > 0 {
		t.Fatalf("%d predictions failed", failed)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("mlgate exited with %v", err)
	}

	rows, ids, files := countRows(t, python, filepath.Join(dataDir, "inference"))
	if rows != total || ids != total {
		t.Errorf("pyarrow read %d rows with %d distinct request ids in %d files, want %d", rows, ids, files, total)
	}
	t.Logf("pyarrow: %d rows, %d request ids, %d files", rows, ids, files)
}

// countRows reads every inference-table file under root with pyarrow and
// returns the rows, the distinct request ids and the files.
func countRows(t *testing.T, python, root string) (rows, ids, files int) {
	t.Helper()
	script := `
import glob, os, sys
import pyarrow.parquet as pq
root = sys.argv[1]
files = [f for f in glob.glob(os.path.join(root, "**", "*.parquet"), recursive=True)
         if "/_" not in f[len(root):] and not os.path.basename(f).startswith(".")]
ids = set()
rows = 0
for f in files:
    t = pq.read_table(f)
    rows += t.num_rows
    ids.update(t.column("request_id").to_pylist())
    assert t.column_names[:4] == ["request_id", "timestamp", "endpoint", "variant"], t.column_names
print(rows, len(ids), len(files))
`
	out, err := exec.Command(python, "-c", script, root).CombinedOutput()
	if err != nil {
		t.Fatalf("pyarrow: %v\n%s", err, out)
	}
	fmt.Sscan(string(out), &rows, &ids, &files)
	return rows, ids, files
}

// TestTablesSurviveKill9 answers predictions, waits past the flush
// interval, kills the gateway with SIGKILL, starts it again on the same data
// directory and stops it with SIGTERM: every row answered before the flush
// interval reaches the tables.
func TestTablesSurviveKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a gateway process")
	}
	python := testservers.Python(t)
	bin, dataDir, cmd, server := serveLinear(t)
	const total = 500
	for i := range total {
		if code := post(t, server+"/v1/models/linear/predict", fmt.Sprintf(`{"request_id": "k%d", "inputs": {"x": [[1, 2, 3, 4]]}}`, i)); code != 200 {
			t.Fatalf("predict: %d", code)
		}
	}
	time.Sleep(1500 * time.Millisecond) // past the 1s flush interval
	crashAndReplay(t, cmd, bin, dataDir, server)
	if rows, ids, _ := countRows(t, python, filepath.Join(dataDir, "inference")); rows != total || ids != total {
		t.Errorf("after kill -9 and a restart, %d rows (%d request ids), want %d", rows, ids, total)
	}
}
