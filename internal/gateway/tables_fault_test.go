package gateway

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/testservers"
	"github.com/mlgate/mlgate/serving/tables"
)

// tablesReport is the answer of GET /v1/tables.
type tablesReport struct {
	Files  []tables.File `json:"files"`
	Writer tables.Stats  `json:"writer"`
}

func getTables(t *testing.T, g *Gateway) tablesReport {
	t.Helper()
	var rep tablesReport
	if err := json.Unmarshal([]byte(call(t, g, "GET", "/v1/tables", "", nil)), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// partitionDirs returns the partition directories of the inference table
// in dataDir.
func partitionDirs(t *testing.T, dataDir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dataDir, "inference"))
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "_") {
			dirs = append(dirs, e.Name())
		}
	}
	return dirs
}

// inferBody is a V2 request for a model with one input.
const inferBody = `{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1]}]}`

// TestLongModelNameRestart sends predictions to models that do not exist,
// one named with 250 characters (longer than a file name may be): each is a
// 404, and the rows they leave go to the date partition, their names in a
// column only. The table shows no failure, Shutdown succeeds, and so does
// a restart on the same data directory. Once, the row was written under
// model=xxx…, which failed; Shutdown returned that error and every later
// start failed while replaying the write-ahead log.
func TestLongModelNameRestart(t *testing.T) {
	dir := t.TempDir()
	g, err := Start(t.Context(), testConfig(dir), "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 250)
	for _, name := range []string{long, "invented", "also-invented", long + "y"} {
		if r := post(t, g, "/v2/models/"+name+"/infer", inferBody); r.status != http.StatusNotFound {
			t.Errorf("infer on model %.20q…: %d %s, want 404", name, r.status, r.body)
		}
	}
	if err := g.Server.FlushRecords(t.Context()); err != nil {
		t.Errorf("Flush: %v", err)
	}
	rep := getTables(t, g)
	if st := rep.Writer; st.Written != 4 || st.Failed != 0 || st.Errors != 0 || st.Quarantined != 0 {
		t.Errorf("/v1/tables writer %+v, want 4 rows written and no failure", st)
	}
	for _, d := range partitionDirs(t, dir) {
		if !strings.HasPrefix(d, "date=") {
			t.Errorf("partition %s, want only date= partitions", d)
		}
	}
	var names []string
	tables.Dir(filepath.Join(dir, "inference")).ReadRows(t.Context(), tables.Filter{}, func(r tables.Row) error {
		names = append(names, r.ModelName)
		return nil
	})
	if len(names) != 4 || !strings.Contains(strings.Join(names, " "), long) {
		t.Errorf("rows name the models %.60q, want the four asked for", names)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	g, err = Start(t.Context(), testConfig(dir), "test", quiet())
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after the restart: %v", err)
	}
}

// record frames payload as the write-ahead log does (see serving/tables):
// uvarint(len(payload)) payload crc32c(payload), little endian.
func record(payload []byte) []byte {
	b := binary.AppendUvarint(nil, uint64(len(payload)))
	b = append(b, payload...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(payload, crc32.MakeTable(crc32.Castagnoli)))
}

// rowPayload encodes, by hand, the payload of a row of the write-ahead log
// with the given request id, timestamp and model name, no endpoint and no
// version: a request no model version served.
func rowPayload(id string, ts time.Time, model string) []byte {
	str := func(p []byte, s string) []byte { return append(binary.AppendUvarint(p, uint64(len(s))), s...) }
	p := str(nil, id)
	p = binary.AppendVarint(p, ts.UnixMicro())
	p = str(str(p, ""), "")          // endpoint, variant
	p = append(p, 0)                 // is_shadow
	p = str(p, model)                // model_name
	p = binary.AppendVarint(p, 0)    // model_version
	p = str(p, "")                   // model_uuid
	p = binary.AppendVarint(p, 404)  // status_code
	p = binary.AppendVarint(p, 1000) // latency_us
	for range 6 {                    // entities, features, feature_status, request, response, error
		p = str(p, "")
	}
	return p
}

// TestPoisonedLogReplayed starts the gateway on a write-ahead log written by
// hand: good rows (one of them the 250-character model name an earlier
// version could not file), a row whose timestamp has no date, and a record
// that is no row. The gateway starts; the good rows are in the table, the
// two bad records in its quarantine, counted in /v1/tables.
func TestPoisonedLogReplayed(t *testing.T) {
	dir := t.TempDir()
	now := time.Now().UTC()
	var wal []byte
	for i, model := range []string{"lin", strings.Repeat("x", 250), "invented"} {
		wal = append(wal, record(rowPayload(fmt.Sprint("good-", i), now, model))...)
	}
	wal = append(wal, record(rowPayload("year-10000", time.Date(10000, 6, 1, 0, 0, 0, 0, time.UTC), "lin"))...)
	wal = append(wal, record([]byte("not a row"))...)
	walDir := filepath.Join(dir, "inference", "_wal")
	if err := os.MkdirAll(walDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(walDir, "00000000000000000001.wal"), wal, 0o644); err != nil {
		t.Fatal(err)
	}

	g, err := Start(t.Context(), testConfig(dir), "test", quiet())
	if err != nil {
		t.Fatalf("start on a poisoned log: %v", err)
	}
	defer g.Shutdown(context.Background())
	rep := getTables(t, g)
	if st := rep.Writer; st.Recovered != 3 || st.Written != 3 || st.Quarantined != 2 || st.Failed != 0 {
		t.Errorf("/v1/tables writer %+v, want 3 rows recovered and written, 2 quarantined", st)
	}
	var rows int64
	for _, f := range rep.Files {
		rows += f.Rows
	}
	if rows != 3 {
		t.Errorf("%d rows in the table, want 3", rows)
	}
	quarantined, _ := filepath.Glob(filepath.Join(dir, "inference", "_quarantine", "*.rec"))
	left, _ := filepath.Glob(filepath.Join(walDir, "*"))
	if len(quarantined) != 1 || len(left) != 0 {
		t.Errorf("quarantine files %v, log segments left %v; want one and none", quarantined, left)
	}
}

// readiness returns the status and body of /v2/health/ready.
func readiness(t *testing.T, g *Gateway) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + g.Addr + "/v2/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}

var tableErrors = regexp.MustCompile(`(?m)^mlgate_inference_table_errors_total(?:\{[^}]*\})? (\d+)`)

// TestReadyReportsDegradedTables makes the inference table's directory
// immutable while predictions are recorded: readiness stays 200, so the
// load balancer keeps routing, but its body names the fault and
// mlgate_inference_table_errors_total counts it; once the directory is
// writable again readiness is whole within a few flush intervals.
func TestReadyReportsDegradedTables(t *testing.T) {
	testservers.RequireImmutable(t)
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.Tables.FlushInterval = config.Duration(20 * time.Millisecond)
	g, err := Start(t.Context(), cfg, "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	predict := func() {
		if r := post(t, g, "/v2/models/missing/infer", inferBody); r.status != http.StatusNotFound {
			t.Fatalf("infer on a missing model: %d %s, want 404", r.status, r.body)
		}
	}
	predict()
	if status, body := readiness(t, g); status != 200 || body != `{"ready":true}` {
		t.Fatalf("ready before the fault: %d %s", status, body)
	}
	inference := filepath.Join(dir, "inference")
	testservers.Immutable(t, inference, true)
	t.Cleanup(func() { exec.Command("chattr", "-R", "-i", inference).Run() })
	waitReady(t, g, predict, "the fault", func(body string) bool { return strings.Contains(body, "degraded") })
	status, body := readiness(t, g)
	var ready struct {
		Ready    bool     `json:"ready"`
		Degraded []string `json:"degraded"`
	}
	json.Unmarshal([]byte(body), &ready)
	if status != 200 || !ready.Ready || len(ready.Degraded) != 1 || !strings.HasPrefix(ready.Degraded[0], "inference tables: ") ||
		!strings.Contains(ready.Degraded[0], "operation not permitted") {
		t.Errorf("ready during the fault: %d %s; want 200, ready, degraded by the inference tables", status, body)
	}
	if strings.Contains(body, dir) {
		t.Errorf("ready during the fault shows the data directory %s: %s", dir, body)
	}
	m := tableErrors.FindStringSubmatch(call(t, g, "GET", "/metrics", "", nil))
	if n, _ := strconv.Atoi(m[1]); len(m) < 2 || n == 0 {
		t.Errorf("/metrics: mlgate_inference_table_errors_total %v, want > 0", m)
	}
	testservers.Immutable(t, inference, false)
	waitReady(t, g, predict, "the recovery", func(body string) bool { return body == `{"ready":true}` })
}

// waitReady sends predictions until the body of /v2/health/ready satisfies
// cond, for at most 5 s.
func waitReady(t *testing.T, g *Gateway, predict func(), what string, cond func(string) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		predict()
		if _, body := readiness(t, g); cond(body) {
			return
		}
		if time.Now().After(deadline) {
			_, body := readiness(t, g)
			t.Fatalf("readiness after %s: %s", what, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
