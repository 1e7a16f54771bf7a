package serving_test

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/serving"
	"github.com/mlgate/mlgate/serving/onnx"
)

// TestAliasFlipsUnderLoad moves the champion alias between two versions 100
// times while clients call the model without naming a version. No request may
// fail, and every answer must be exactly one version's output.
func TestAliasFlipsUnderLoad(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	g.register("linear", modelzoo.LinearV2)
	g.setAlias("linear", "champion", 1)
	want := map[string]string{"1": "[1.5,7.5]", "2": "[18.5,21]"}
	in := v2Input{"x", []int64{1, 4}, "FP32", []float32{0, 1, 2, 3}}

	const workers = 8
	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		requests atomic.Int64
		served   [3]atomic.Int64 // by version
		failures = make(chan string, 100)
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				got, r := g.infer("/v2/models/linear/infer", in)
				requests.Add(1)
				if r.status != http.StatusOK {
					failures <- fmt.Sprintf("status %d: %s", r.status, r.body)
					return
				}
				if w, ok := want[got.ModelVersion]; !ok || string(got.Outputs[0].Data) != w {
					failures <- fmt.Sprintf("version %s answered %s", got.ModelVersion, got.Outputs[0].Data)
					return
				}
				if got.ModelVersion == "1" {
					served[1].Add(1)
				} else {
					served[2].Add(1)
				}
			}
		}()
	}
	for i := range 100 {
		g.setAlias("linear", "champion", 2-i%2)
	}
	stop.Store(true)
	wg.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	t.Logf("%d requests during 100 alias moves: %d by version 1, %d by version 2", requests.Load(), served[1].Load(), served[2].Load())
	if served[1].Load() == 0 || served[2].Load() == 0 {
		t.Errorf("both versions should have served: %d and %d", served[1].Load(), served[2].Load())
	}
}

// TestDeletedVersionDrains deletes a version while a request holds its
// session: the request finishes on it, and the session closes only when the
// request lets go.
func TestDeletedVersionDrains(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	g.register("linear", modelzoo.LinearV2)
	held, err := g.catalog.Acquire("linear", "1")
	if err != nil {
		t.Fatal(err)
	}
	if r := g.do(http.MethodDelete, "/v1/models/linear/versions/1", "", nil); r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if _, err := g.catalog.Acquire("linear", "1"); err == nil {
		t.Fatal("a deleted version must not be served to new requests")
	}
	if n := held.Refs(); n != 1 {
		t.Fatalf("references to the retired session = %d, want 1 (the request's)", n)
	}
	out, err := held.Run([]onnx.Tensor{{Name: "x", Type: onnx.FP32, Shape: []int64{1, 4}, Data: []float32{0, 1, 2, 3}}})
	if err != nil {
		t.Fatalf("the request in flight must finish on the retired session: %v", err)
	}
	if got := fmt.Sprint(out[0].Data); got != "[1.5 7.5]" {
		t.Errorf("retired session answered %s", got)
	}
	held.Release()
	if n := held.Refs(); n != 0 {
		t.Errorf("references after release = %d, want 0 (closed)", n)
	}
}

func TestSessionsSurviveTagChanges(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	before, _ := g.catalog.Acquire("linear", "1")
	before.Release()
	g.json(http.MethodPut, "/v1/models/linear/versions/1/tags/validation_status", map[string]string{"value": "PASSED"})
	after, _ := g.catalog.Acquire("linear", "1")
	defer after.Release()
	if after.Session != before.Session {
		t.Error("a tag change must not reload the session")
	}
	if after.Version.Status != "PASSED" {
		t.Errorf("catalog version status = %s, want PASSED", after.Version.Status)
	}
}

// TestLoadErrorHidesPaths: a version that will not load answers 503 with the
// reason, but not the path of its file or of the data directory.
func TestLoadErrorHidesPaths(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	c := serving.NewCatalog(g.reg, func(path string) (*onnx.Session, error) {
		return nil, fmt.Errorf("Load model from %s failed: protobuf parsing failed (next to %s)", path, filepath.Join(filepath.Dir(path), "other.onnx"))
	}, nil, g.log)
	if err := c.Sync(t.Context()); !errors.Is(err, serving.ErrNotAllLoaded) {
		t.Fatalf("Sync with a version that does not load: %v, want ErrNotAllLoaded", err)
	}
	defer c.Close()
	_, err := c.Acquire("linear", "1")
	if err == nil || strings.Contains(err.Error(), g.dataDir) || !strings.Contains(err.Error(), "protobuf parsing failed") {
		t.Errorf("load error %q: want the reason without %s", err, g.dataDir)
	}
	if !strings.Contains(err.Error(), "Load model from the model file failed") || !strings.Contains(err.Error(), "the data directory/other.onnx") {
		t.Errorf("load error %q: want the paths named as the model file and the data directory", err)
	}
}

// TestAliasWaitsForItsVersionToLoad: an alias moved to a version that does
// not load here (its file not fetched yet, say) stays on the version it
// named, which still serves; Sync says not all loaded, and once a later
// Sync loads the version the alias moves.
func TestAliasWaitsForItsVersionToLoad(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	g.json(http.MethodPut, "/v1/models/linear/aliases/champion", map[string]int{"version": 1})
	var failing atomic.Bool
	c := serving.NewCatalog(g.reg, func(path string) (*onnx.Session, error) {
		if failing.Load() {
			return nil, errors.New("model file not fetched yet")
		}
		return onnx.LoadWarm(path, onnx.Options{})
	}, nil, g.log)
	defer c.Close()
	if err := c.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	g.register("linear", modelzoo.Linear)
	g.json(http.MethodPut, "/v1/models/linear/aliases/champion", map[string]int{"version": 2})
	champion := func() int {
		t.Helper()
		l, err := c.Acquire("linear", "champion")
		if err != nil {
			t.Fatalf("champion: %v", err)
		}
		defer l.Release()
		return l.Version.Version
	}
	failing.Store(true)
	if err := c.Sync(t.Context()); !errors.Is(err, serving.ErrNotAllLoaded) {
		t.Fatalf("Sync: %v, want ErrNotAllLoaded", err)
	}
	if v := champion(); v != 1 {
		t.Errorf("champion serves version %d while version 2 does not load; want 1", v)
	}
	failing.Store(false)
	if err := c.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if v := champion(); v != 2 {
		t.Errorf("champion serves version %d once version 2 loaded; want 2", v)
	}
}
