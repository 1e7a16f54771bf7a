package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/testservers"
	"github.com/mlgate/mlgate/registry"
)

// readmeQueriesMarker precedes, in README.md, the code block of DuckDB
// queries that TestTablesReaders runs as they are.
const readmeQueriesMarker = "<!-- inference-table-queries"

// readmeQueries returns the SQL of each `duckdb -c "..."` line of the code
// block after readmeQueriesMarker in the README at path.
func readmeQueries(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := bytes.Cut(raw, []byte(readmeQueriesMarker))
	if !ok {
		t.Fatalf("%s has no %q", path, readmeQueriesMarker)
	}
	var queries []string
	in := false
	for sc := bufio.NewScanner(bytes.NewReader(after)); sc.Scan(); {
		line := sc.Text()
		switch {
		case !in && strings.HasPrefix(line, "```"):
			in = true
		case in && strings.HasPrefix(line, "```"):
			return queries
		case in:
			sql, ok := strings.CutPrefix(line, `duckdb -c "`)
			if sql, ok = strings.CutSuffix(sql, `"`); !ok || strings.Contains(sql, `"`) {
				t.Fatalf("%s: a line of the queries after %q is not duckdb -c \"<sql>\": %s", path, readmeQueriesMarker, line)
			}
			queries = append(queries, sql)
		}
	}
	t.Fatalf("%s: no code block after %q", path, readmeQueriesMarker)
	return nil
}

// readersScript reads the inference table in argv[1] with pandas, pyarrow
// and DuckDB, with no option, runs the DuckDB queries of the JSON list
// argv[2], and prints what each saw as JSON.
const readersScript = `
import json, sys
import duckdb, pandas, pyarrow.dataset as ds

d, queries = sys.argv[1], json.loads(sys.argv[2])
out = {}

df = pandas.read_parquet(d)
out["pandas"] = {"rows": len(df), "ids": int(df["request_id"].nunique()), "columns": list(df.columns)}
labels = pandas.read_parquet(d + "/_labels")
latest = labels.sort_values("timestamp").groupby("request_id", as_index=False).last()
out["pandas_join"] = len(df.merge(latest, on="request_id"))

t = ds.dataset(d, partitioning="hive").to_table()
out["pyarrow"] = {"rows": t.num_rows, "ids": len(set(t.column("request_id").to_pylist())), "columns": t.column_names}

for name, opt in [("duckdb", ""), ("duckdb_hive", ", hive_partitioning=true"), ("duckdb_no_hive", ", hive_partitioning=false")]:
    src = "read_parquet('%s/date=*/*.parquet'%s)" % (d, opt)
    rows, ids = duckdb.sql("select count(*), count(distinct request_id) from " + src).fetchone()
    out[name] = {"rows": rows, "ids": ids, "columns": duckdb.sql("select * from " + src + " limit 0").columns}

out["readme"] = [duckdb.sql(q).fetchall() for q in queries]
print(json.dumps(out, default=str))
`

// sparkScript reads the inference table in argv[1] with Spark, with no
// option, and prints what it saw as JSON, with the rows joined to labels.
const sparkScript = `
import json, sys
from pyspark.sql import SparkSession

spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
spark.sparkContext.setLogLevel("ERROR")
df = spark.read.parquet(sys.argv[1])
labels = spark.read.parquet(sys.argv[1] + "/_labels")
print(json.dumps({"rows": df.count(), "ids": df.select("request_id").distinct().count(), "columns": df.columns,
                  "joined": df.join(labels.select("request_id").distinct(), "request_id").count()}))
spark.stop()
`

// readerView is what one reader saw of the table.
type readerView struct {
	Rows    int      `json:"rows"`
	IDs     int      `json:"ids"`
	Columns []string `json:"columns"`
}

// TestTablesReaders writes an inference table through a real gateway, rows
// of two endpoints and of direct model calls (one to a model that does not
// exist), part of them by an earlier start in the old endpoint= layout,
// which the next start moves; posts labels, one request labelled twice;
// and has pandas, pyarrow, DuckDB and Spark read it with no option, and runs the
// README's DuckDB queries as they are written there: each reader sees
// every row once, a date partition column where it reads partitions, and
// the labels join by request_id.
func TestTablesReaders(t *testing.T) {
	python := testservers.Python(t)
	queries := readmeQueries(t, filepath.Join("..", "..", "README.md"))
	if len(queries) < 2 {
		t.Fatalf("README: %d DuckDB queries after %q, want the predictions' and the labels'", len(queries), readmeQueriesMarker)
	}
	dir := t.TempDir()
	inference := filepath.Join(dir, "inference")
	total := 0
	predict := func(g *Gateway, path, body string, want int) {
		t.Helper()
		if r := post(t, g, path, body); r.status != want {
			t.Fatalf("POST %s: %d %s, want %d", path, r.status, r.body, want)
		}
		total++
	}
	const x = `"inputs": {"x": [[1, 2, 3, 4]]}`

	// A first start writes rows of the endpoint churn, then they are put
	// where an earlier version wrote them: endpoint=churn/date=<d>/.
	g, err := Start(t.Context(), testConfig(dir), "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(modelzoo.Path(modelzoo.Linear))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Registry.Register(t.Context(), "test", "linear", bytes.NewReader(raw), registry.Metadata{}); err != nil {
		t.Fatal(err)
	}
	if err := g.Catalog.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"churn", "fraud"} {
		if r := send(t, g, http.MethodPut, "/v1/endpoints/"+e, `{"variants": [{"name": "a", "model": "linear/1", "weight": 1}]}`); r.status != http.StatusCreated {
			t.Fatalf("create endpoint %s: %d %s", e, r.status, r.body)
		}
	}
	for i := range 3 {
		predict(g, "/v1/endpoints/churn/predict", fmt.Sprintf(`{"request_id": "c%d", "unit": "u%d", %s}`, i, i, x), http.StatusOK)
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	dates, err := filepath.Glob(filepath.Join(inference, "date=*"))
	if err != nil || len(dates) == 0 {
		t.Fatalf("date partitions after the first start: %v %v", dates, err)
	}
	if err := os.Mkdir(filepath.Join(inference, "endpoint=churn"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range dates {
		if err := os.Rename(d, filepath.Join(inference, "endpoint=churn", filepath.Base(d))); err != nil {
			t.Fatal(err)
		}
	}

	// The second start moves them back, and writes the other rows.
	g, err = Start(t.Context(), testConfig(dir), "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	if _, err := os.Stat(filepath.Join(inference, "endpoint=churn")); !os.IsNotExist(err) {
		t.Errorf("endpoint=churn after a start: %v, want it moved and removed", err)
	}
	for i := 3; i < 6; i++ {
		predict(g, "/v1/endpoints/churn/predict", fmt.Sprintf(`{"request_id": "c%d", "unit": "u%d", %s}`, i, i, x), http.StatusOK)
	}
	for i := range 4 {
		predict(g, "/v1/endpoints/fraud/predict", fmt.Sprintf(`{"request_id": "f%d", "unit": "u%d", %s}`, i, i, x), http.StatusOK)
	}
	for i := range 3 {
		predict(g, "/v1/models/linear/predict", fmt.Sprintf(`{"request_id": "m%d", %s}`, i, x), http.StatusOK)
	}
	predict(g, "/v2/models/invented/infer", inferBody, http.StatusNotFound)
	for _, labels := range []string{
		`{"labels": [{"request_id": "c0", "label": 1}, {"request_id": "c1", "label": 0}, {"request_id": "f0", "label": 1}, {"request_id": "m0", "label": 0.5}]}`,
		`{"labels": [{"request_id": "c1", "label": 1}]}`, // the latest label wins
	} {
		if r := post(t, g, "/v1/labels", labels); r.status != http.StatusOK {
			t.Fatalf("POST /v1/labels: %d %s", r.status, r.body)
		}
	}
	if err := g.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	sqls := make([]string, len(queries))
	for i, q := range queries {
		sqls[i] = strings.ReplaceAll(q, "mlgate-data/inference", inference)
	}
	arg, _ := json.Marshal(sqls)
	out, err := exec.Command(python, "-c", readersScript, inference, string(arg)).CombinedOutput()
	if err != nil {
		t.Fatalf("readers: %v\n%s", err, out)
	}
	var got struct {
		Pandas       readerView `json:"pandas"`
		PandasJoin   int        `json:"pandas_join"`
		PyArrow      readerView `json:"pyarrow"`
		DuckDB       readerView `json:"duckdb"`
		DuckDBHive   readerView `json:"duckdb_hive"`
		DuckDBNoHive readerView `json:"duckdb_no_hive"`
		README       [][][]any  `json:"readme"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("readers: %v\n%s", err, out)
	}
	t.Logf("readers: %s", out)
	for _, r := range []struct {
		name string
		view readerView
		date bool // a date column, from the partitions
	}{
		{"pandas.read_parquet", got.Pandas, true},
		{"pyarrow.dataset", got.PyArrow, true},
		{"DuckDB read_parquet", got.DuckDB, true},
		{"DuckDB read_parquet, hive_partitioning=true", got.DuckDBHive, true},
		{"DuckDB read_parquet, hive_partitioning=false", got.DuckDBNoHive, false},
	} {
		if r.view.Rows != total || r.view.IDs != total {
			t.Errorf("%s: %d rows, %d request ids; want %d of each", r.name, r.view.Rows, r.view.IDs, total)
		}
		if slices.Contains(r.view.Columns, "date") != r.date || !slices.Contains(r.view.Columns, "endpoint") || !slices.Contains(r.view.Columns, "model_name") {
			t.Errorf("%s: columns %v, want endpoint, model_name and, if it reads partitions, date", r.name, r.view.Columns)
		}
	}
	if got.PandasJoin != 4 {
		t.Errorf("pandas: %d rows joined to their latest label, want 4", got.PandasJoin)
	}

	// The README's first query: rows by endpoint and variant; its second:
	// the labelled rows and their mean label by endpoint.
	counted := 0
	for _, row := range got.README[0] {
		if n, ok := row[2].(float64); ok {
			counted += int(n)
		}
	}
	if len(got.README[0]) != 3 || counted != total {
		t.Errorf("README query %s: %v; want %d rows in 3 groups (churn, fraud and direct calls)", queries[0], got.README[0], total)
	}
	want := [][]any{{"churn", 2.0, 1.0}, {"fraud", 1.0, 1.0}, {nil, 1.0, 0.5}}
	if fmt.Sprint(got.README[1]) != fmt.Sprint(want) {
		t.Errorf("README query %s: %v, want %v", queries[1], got.README[1], want)
	}

	t.Run("spark", func(t *testing.T) {
		cmd := exec.Command(testservers.SparkPython(t), "-c", sparkScript, inference)
		var log bytes.Buffer // Spark's own; its answer is the last line of stdout
		cmd.Stderr = &log
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("spark: %v\n%s\n%s", err, out, log.Bytes())
		}
		lines := bytes.Split(bytes.TrimSpace(out), []byte("\n"))
		var spark struct {
			readerView
			Joined int `json:"joined"`
		}
		if err := json.Unmarshal(lines[len(lines)-1], &spark); err != nil {
			t.Fatalf("spark: %v\n%s", err, out)
		}
		t.Logf("spark.read.parquet: %s", lines[len(lines)-1])
		if spark.Rows != total || spark.IDs != total || !slices.Contains(spark.Columns, "date") || !slices.Contains(spark.Columns, "endpoint") {
			t.Errorf("spark.read.parquet: %+v; want %d rows and ids, and the columns endpoint and date", spark.readerView, total)
		}
		if spark.Joined != 4 {
			t.Errorf("spark: %d rows joined to labels, want 4", spark.Joined)
		}
	})
}
