package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

// fakeGateway stands in for the gateway's feature-view API: it serves one
// view, "user", records the views PUT and the rows POSTed, and refuses the
// rows whose name is "refuse" the way the gateway reports a bad row.
type fakeGateway struct {
	mu      sync.Mutex
	puts    []map[string]any // bodies, with the name from the path
	batches [][]map[string]any
	srv     *httptest.Server
}

const userViewJSON = `{"name":"user","entities":["user_id"],"features":[{"name":"age","type":"float"},` +
	`{"name":"visits","type":"int"},{"name":"name","type":"string"},{"name":"active","type":"bool"},` +
	`{"name":"emb","type":"float_list"}],"ttl":"24h0m0s","store":"redis","cache_ttl":"0s",` +
	`"created_at":"2026-11-21T10:00:00Z","updated_at":"2026-11-21T10:00:00Z"}`

func newFakeGateway(t *testing.T) *fakeGateway {
	g := &fakeGateway{}
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, code int, msg string) {
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(map[string]string{"error": msg})
	}
	mux.HandleFunc("GET /v1/feature-views/{name}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != "user" {
			fail(w, http.StatusNotFound, fmt.Sprintf("feature view %q not found", r.PathValue("name")))
			return
		}
		io.WriteString(w, userViewJSON)
	})
	mux.HandleFunc("PUT /v1/feature-views/{name}", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			fail(w, http.StatusBadRequest, err.Error())
			return
		}
		if r.PathValue("name") == "broken" {
			fail(w, http.StatusBadRequest, `view broken: store "nowhere" is not configured`)
			return
		}
		body["name"] = r.PathValue("name")
		g.mu.Lock()
		g.puts = append(g.puts, maps.Clone(body))
		g.mu.Unlock()
		body["created_at"], body["updated_at"] = "2026-11-21T10:00:00Z", "2026-11-21T10:00:00Z"
		if body["store"] == nil {
			body["store"] = "embedded"
		}
		if body["cache_ttl"] == nil {
			body["cache_ttl"] = "0s"
		}
		json.NewEncoder(w).Encode(body)
	})
	mux.HandleFunc("POST /v1/feature-views/{name}/rows", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Rows []map[string]any `json:"rows"`
		}
		dec := json.NewDecoder(r.Body)
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil {
			fail(w, http.StatusBadRequest, err.Error())
			return
		}
		for i, row := range body.Rows {
			if row["name"] == "refuse" {
				fail(w, http.StatusBadRequest, fmt.Sprintf(`rows[%d].name: "refuse" is refused`, i))
				return
			}
		}
		g.mu.Lock()
		g.batches = append(g.batches, body.Rows)
		g.mu.Unlock()
		json.NewEncoder(w).Encode(map[string]int{"written": len(body.Rows)})
	})
	g.srv = httptest.NewServer(mux)
	t.Cleanup(g.srv.Close)
	return g
}

// rows returns every row received, in order.
func (g *fakeGateway) rows() []map[string]any {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []map[string]any
	for _, b := range g.batches {
		out = append(out, b...)
	}
	return out
}

// capture runs the CLI with args and returns what it printed.
func capture(t *testing.T, args ...string) (out, errOut string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	stdout, stderr = &o, &e
	defer func() { stdout, stderr = os.Stdout, os.Stderr }()
	err = run(args)
	return o.String(), e.String(), err
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const viewsYAML = `views:
  - name: user
    entities: [user_id]
    features:
      - {name: age, type: float}
      - {name: emb, type: float_list}
    ttl: 24h
    store: redis
    cache_ttl: 10s
  - name: item
    entities:
      - item_id
    features:
      - name: price
        type: double
    ttl: 1h
`

func TestFeaturesApply(t *testing.T) {
	g := newFakeGateway(t)
	out, _, err := capture(t, "features", "apply", "-f", writeFile(t, "views.yaml", viewsYAML), "--server", g.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"name": "user", "entities": []any{"user_id"}, "features": []any{map[string]any{"name": "age", "type": "float"},
			map[string]any{"name": "emb", "type": "float_list"}}, "ttl": "24h", "store": "redis", "cache_ttl": "10s"},
		{"name": "item", "entities": []any{"item_id"}, "features": []any{map[string]any{"name": "price", "type": "double"}}, "ttl": "1h"},
	}
	if got, _ := json.Marshal(g.puts); string(got) != mustJSON(t, want) {
		t.Errorf("PUT bodies:\n got  %s\n want %s", got, mustJSON(t, want))
	}
	wantOut := "applied view user: 1 entity, 2 features, ttl 24h0m0s, store redis, cache_ttl 10s\n" +
		"applied view item: 1 entity, 1 feature, ttl 1h0m0s, store embedded, cache_ttl 0s\n"
	if out != wantOut {
		t.Errorf("output:\n%s\nwant:\n%s", out, wantOut)
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFeaturesApplyErrors(t *testing.T) {
	g := newFakeGateway(t)
	tests := []struct {
		yaml, want string
	}{
		{strings.Replace(viewsYAML, "        type: double", "        tpye: double", 1), `unknown key "views[1].features[0].tpye" (line 15)`},
		{strings.Replace(viewsYAML, "    ttl: 1h", "    ttl: 1h\n    owner: me", 1), `unknown key "views[1].owner" (line 17)`},
		{"view:\n  - name: user\n", `unknown key "view" (line 1)`},
		{strings.Replace(viewsYAML, "    ttl: 24h", "    ttl: 24h\n    ttl: 1h", 1), `duplicate key "views[0].ttl" (line 8)`},
		{strings.Replace(viewsYAML, "ttl: 1h", "ttl: 1d", 1), `views[1].ttl (line 16): invalid duration "1d"`},
		{strings.Replace(viewsYAML, "type: double", "type: decimal", 1), `views[1] (line 10): view item: features[0].type: "decimal" is not one of`},
		{strings.Replace(viewsYAML, "entities: [user_id]", "entities: user_id", 1), `views[0].entities (line 3): want a list, got a single value`},
		{strings.Replace(viewsYAML, "  - name: item", "  - name: user", 1), `views[1] (line 10): view user is already given as views[0]`},
		{"views:\n  - entities: [a]\n", `views[0] (line 2): name is required`},
		{"views: []\n", `no views`},
		{"views: [\n", `yaml: line 1`},
	}
	for _, tt := range tests {
		_, _, err := capture(t, "features", "apply", "-f", writeFile(t, "views.yaml", tt.yaml), "--server", g.srv.URL)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "views.yaml: ") {
			t.Errorf("%q:\n got  %v\n want %s", tt.yaml, err, tt.want)
		}
	}
	if len(g.puts) != 0 {
		t.Errorf("a bad file sent %d views", len(g.puts))
	}

	// The gateway refuses the second view: the first stays applied, the
	// third is not sent.
	yaml := "views:\n" +
		"  - {name: user, entities: [user_id], features: [{name: age, type: float}], ttl: 1h}\n" +
		"  - {name: broken, entities: [id], features: [{name: x, type: int}], ttl: 1h, store: nowhere}\n" +
		"  - {name: item, entities: [item_id], features: [{name: price, type: double}], ttl: 1h}\n"
	out, _, err := capture(t, "features", "apply", "-f", writeFile(t, "views.yaml", yaml), "--server", g.srv.URL)
	want := `view broken (views[1], line 3) failed: view broken: store "nowhere" is not configured (HTTP 400); 1 view applied before it`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("server error: got %v, want %s", err, want)
	}
	if len(g.puts) != 1 || g.puts[0]["name"] != "user" || !strings.HasPrefix(out, "applied view user") {
		t.Errorf("after the server error: %d views applied, output %q", len(g.puts), out)
	}
}

// userCSV writes a CSV of n rows: user u<i> has age i+0.5, visits i, name
// n<i>, active i%2==0 and emb [i,1].
func userCSV(t *testing.T, n int, edit func(i int, line string) string) string {
	var b strings.Builder
	b.WriteString("user_id,age,visits,name,active,emb,event_ts\n")
	for i := range n {
		line := fmt.Sprintf("u%d,%d.5,%d,n%d,%t,\"[%d,1]\",2026-11-21T10:00:00Z\n", i, i, i, i, i%2 == 0, i)
		if edit != nil {
			line = edit(i, line)
		}
		b.WriteString(line)
	}
	return writeFile(t, "rows.csv", b.String())
}

var summaryRE = regexp.MustCompile(`^ingested (\d+) rows into view user in \d+\.\d\ds \(\d+ rows/s\)\n$`)

func TestFeaturesIngestCSV(t *testing.T) {
	g := newFakeGateway(t)
	out, stderr, err := capture(t, "features", "ingest", "--view", "user", "--file", userCSV(t, 2500, nil), "--batch", "1000", "--server", g.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if m := summaryRE.FindStringSubmatch(out); m == nil || m[1] != "2500" {
		t.Errorf("summary = %q", out)
	}
	if stderr != "" {
		t.Errorf("stderr (not a terminal) = %q", stderr)
	}
	var sizes []int
	for _, b := range g.batches {
		sizes = append(sizes, len(b))
	}
	if fmt.Sprint(sizes) != "[1000 1000 500]" {
		t.Errorf("batch sizes = %v", sizes)
	}
	rows := g.rows()
	seen := map[string]bool{}
	for i, r := range rows {
		id := fmt.Sprint(r["user_id"])
		if seen[id] {
			t.Fatalf("user %s sent twice", id)
		}
		seen[id] = true
		want := fmt.Sprintf(`{"active":%t,"age":%d.5,"emb":[%d,1],"event_ts":"2026-11-21T10:00:00Z","name":"n%d","user_id":"u%d","visits":%d}`,
			i%2 == 0, i, i, i, i, i)
		if got := mustJSON(t, r); got != want {
			t.Fatalf("row %d = %s, want %s", i, got, want)
		}
	}
	if len(seen) != 2500 {
		t.Errorf("%d distinct rows arrived, want 2500", len(seen))
	}
}

func TestFeaturesIngestParquet(t *testing.T) {
	type row struct {
		UserID  string    `parquet:"user_id"`
		Age     *float32  `parquet:"age,optional"`
		Visits  int64     `parquet:"visits"`
		Active  bool      `parquet:"active"`
		Emb     []float32 `parquet:"emb,list"`
		EventTS time.Time `parquet:"event_ts,timestamp(millisecond)"`
	}
	ts := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	var rows []row
	for i := range 100 {
		r := row{UserID: fmt.Sprintf("u%d", i), Visits: int64(i), Active: i%2 == 1, Emb: []float32{float32(i) / 4}, EventTS: ts.Add(time.Duration(i) * time.Millisecond)}
		if i%10 != 0 {
			age := float32(i) + 0.25
			r.Age = &age
		}
		rows = append(rows, r)
	}
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[row](&buf, parquet.MaxRowsPerRowGroup(30))
	if _, err := w.Write(rows); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// An extension that says nothing, so --format decides.
	file := writeFile(t, "rows.data", buf.String())

	g := newFakeGateway(t)
	if _, _, err := capture(t, "features", "ingest", "--view", "user", "--file", file, "--server", g.srv.URL); err == nil || !strings.Contains(err.Error(), "give --format") {
		t.Errorf("unknown extension: err = %v", err)
	}
	out, _, err := capture(t, "features", "ingest", "--view", "user", "--file", file, "--format", "parquet", "--batch", "7", "--server", g.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if m := summaryRE.FindStringSubmatch(out); m == nil || m[1] != "100" {
		t.Errorf("summary = %q", out)
	}
	if len(g.batches) != 15 {
		t.Errorf("%d batches, want 15", len(g.batches))
	}
	for i, r := range g.rows() {
		want := fmt.Sprintf(`{"active":%t,"age":%d.25,"emb":[%g],"event_ts":"%s","user_id":"u%d","visits":%d}`,
			i%2 == 1, i, float32(i)/4, ts.Add(time.Duration(i)*time.Millisecond).Format(time.RFC3339Nano), i, i)
		if i%10 == 0 {
			want = strings.Replace(want, fmt.Sprintf(`"age":%d.25,`, i), "", 1)
		}
		if got := mustJSON(t, r); got != want {
			t.Errorf("row %d = %s, want %s", i, got, want)
		}
	}
}

// TestFeaturesIngestBadRow checks that a row that does not decode stops the
// ingest: the batches before it are sent whole, nothing after.
func TestFeaturesIngestBadRow(t *testing.T) {
	g := newFakeGateway(t)
	// Row 1501 is on line 1503 (the header is line 1).
	file := userCSV(t, 3000, func(i int, line string) string {
		if i == 1501 {
			return strings.Replace(line, "1501.5", "abc", 1)
		}
		return line
	})
	out, _, err := capture(t, "features", "ingest", "--view", "user", "--file", file, "--batch", "500", "--server", g.srv.URL)
	want := `rows.csv: line 1503, column "age": "abc" is not a float; 1500 rows were written before it (through line 1501), none after`
	if err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if out != "" {
		t.Errorf("summary after an error: %q", out)
	}
	rows := g.rows()
	if len(rows) != 1500 || rows[0]["user_id"] != "u0" || rows[1499]["user_id"] != "u1499" {
		t.Errorf("sent %d rows", len(rows))
	}
}

// TestFeaturesIngestServerError checks that the gateway's rows[i] becomes the
// file's line.
func TestFeaturesIngestServerError(t *testing.T) {
	g := newFakeGateway(t)
	file := userCSV(t, 25, func(i int, line string) string {
		if i == 13 {
			return strings.Replace(line, ",n13,", ",refuse,", 1)
		}
		return line
	})
	_, _, err := capture(t, "features", "ingest", "--view", "user", "--file", file, "--batch", "10", "--server", g.srv.URL)
	want := `rows.csv: the batch of lines 12 to 21 failed: line 15, column "name": "refuse" is refused (HTTP 400); 10 rows were written before it (through line 11), none after`
	if err == nil || !strings.HasSuffix(err.Error(), want) {
		t.Errorf("err = %v\nwant %s", err, want)
	}
	if n := len(g.rows()); n != 10 {
		t.Errorf("sent %d rows, want 10", n)
	}
}

func TestFeaturesIngestErrors(t *testing.T) {
	g := newFakeGateway(t)
	csv := userCSV(t, 1, nil)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--view", "nope", "--file", csv}, `view nope: feature view "nope" not found (HTTP 404)`},
		{[]string{"--view", "user", "--file", writeFile(t, "x.csv", "user_id,agee\n")}, `x.csv: line 1, column "agee": not a column of view user`},
		{[]string{"--view", "user", "--file", writeFile(t, "x.csv", "name\n")}, `x.csv: line 1: the header has no column "user_id"`},
		{[]string{"--view", "user", "--file", writeFile(t, "x.parquet", "not parquet at all")}, `x.parquet: not a Parquet file`},
		{[]string{"--view", "user", "--file", csv, "--batch", "0"}, `--batch 0: want 1 to 100000 rows`},
		{[]string{"--view", "user", "--file", csv, "--format", "json"}, `--format "json": want csv or parquet`},
		{[]string{"--view", "user"}, `--view and --file are required`},
		{[]string{"--view", "user", "--file", filepath.Join(t.TempDir(), "none.csv")}, `no such file`},
	}
	for _, tt := range tests {
		args := append([]string{"features", "ingest", "--server", g.srv.URL}, tt.args...)
		if _, _, err := capture(t, args...); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v:\n got  %v\n want %s", tt.args, err, tt.want)
		}
	}
	if _, _, err := capture(t, "features", "frobnicate"); err == nil || !strings.Contains(err.Error(), "unknown subcommand") {
		t.Errorf("unknown subcommand: %v", err)
	}
	// A file with a header only ingests nothing, and says so.
	out, _, err := capture(t, "features", "ingest", "--server", g.srv.URL, "--view", "user", "--file", writeFile(t, "e.csv", "user_id\n"))
	if err != nil || !strings.HasPrefix(out, "ingested 0 rows into view user in ") {
		t.Errorf("empty file: %q, %v", out, err)
	}
}

func TestFeaturesProgressBar(t *testing.T) {
	g := newFakeGateway(t)
	var bar bytes.Buffer
	in := &ingestRun{c: &client{server: g.srv.URL, http: http.DefaultClient}, view: "user", file: "f.csv", unit: "line",
		start: time.Now(), bar: &bar, progress: func() string { return " (50% of the file)" }}
	rows := []map[string]any{{"user_id": "a"}}
	if err := in.send(rows, []int64{2}); err != nil {
		t.Fatal(err)
	}
	if err := in.send(rows, []int64{3}); err != nil { // within 100ms: not drawn
		t.Fatal(err)
	}
	in.clearBar()
	if want := "\rsent 1 rows (50% of the file)\r" + strings.Repeat(" ", 29) + "\r"; bar.String() != want {
		t.Errorf("bar = %q, want %q", bar.String(), want)
	}
}
