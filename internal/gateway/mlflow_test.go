package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/testservers"
	"github.com/mlgate/mlgate/registry/mlflow"
)

// TestMLflowMirror: mlgate follows a real MLflow Model Registry. A script
// logs an ONNX model with mlflow.onnx.log_model in two versions, and a
// third that is no model, validates the first two (validation_status
// PASSED) and points champion at version 1: mlgate serves
// version 1 at champion, lists version 3 as skipped with its reason, and
// refuses to move the alias itself, naming MLflow. Under load, champion
// moves to version 2 in MLflow: mlgate serves version 2 within the poll
// interval, and no request fails. Then MLflow stops: mlgate goes on
// serving.
func TestMLflowMirror(t *testing.T) {
	server := testservers.StartMLflow(t)
	python := testservers.MLflowPython(t)
	ctl := func(args ...string) {
		t.Helper()
		out, err := exec.Command(python, append([]string{"testdata/mlflow/mlflow_ctl.py", server.URI}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("mlflow_ctl %v: %v\n%s", args, err, out)
		}
	}
	// Versions 1 and 2 validated in MLflow, as champion (protected)
	// requires.
	ctl("log", "scorer", modelzoo.Path(modelzoo.Linear), "+", "log", "scorer", modelzoo.Path(modelzoo.LinearV2), "+", "text", "scorer",
		"+", "tag", "scorer", "1", "validation_status", "PASSED", "+", "tag", "scorer", "2", "validation_status", "PASSED",
		"+", "alias", "scorer", "champion", "1")

	const poll = 500 * time.Millisecond
	cfg := testConfig(t.TempDir())
	cfg.Registry.MLflow = config.MLflow{TrackingURI: server.URI, Models: []string{"scorer"}, Poll: config.Duration(poll)}
	g, err := Start(t.Context(), cfg, "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())

	infer := func() (string, error) {
		body := `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`
		resp, err := http.Post("http://"+g.Addr+"/v2/models/scorer/versions/champion/infer", "application/json", strings.NewReader(body))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		var a struct {
			ModelVersion string `json:"model_version"`
			Error        string `json:"error"`
		}
		json.NewDecoder(resp.Body).Decode(&a)
		if resp.StatusCode != http.StatusOK {
			return "", fmt.Errorf("%d %s", resp.StatusCode, a.Error)
		}
		return a.ModelVersion, nil
	}
	waitFor(t, 60*time.Second, func() bool { v, err := infer(); return err == nil && v == "1" })

	m, err := g.Registry.Model(t.Context(), "scorer")
	if err != nil {
		t.Fatal(err)
	}
	if m.MirroredFrom != mlflow.Source(server.URI) || len(m.Versions) != 2 || len(m.Skipped) != 1 || m.Skipped[0].Version != 3 ||
		!strings.Contains(m.Skipped[0].Reason, "no ONNX model") {
		t.Errorf("mirrored model: from %q, %d versions, skipped %+v", m.MirroredFrom, len(m.Versions), m.Skipped)
	}
	if v := m.Versions[0]; v.Lineage.RunID == "" || !strings.HasPrefix(v.Tags["mlflow.artifact"], "mlflow-artifacts:") {
		t.Errorf("version 1's lineage %+v and tags %v: want MLflow's run id and artifact", v.Lineage, v.Tags)
	}
	req, _ := http.NewRequest(http.MethodPut, "http://"+g.Addr+"/v1/models/scorer/aliases/champion", bytes.NewReader([]byte(`{"version": 2}`)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var refusal struct {
		Error string `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&refusal)
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict || !strings.Contains(refusal.Error, "mirrored from MLflow at "+server.URI) {
		t.Errorf("moving a mirrored alias through mlgate: %d %q; want 409 naming MLflow", resp.StatusCode, refusal.Error)
	}

	// Load, while champion moves in MLflow.
	var served, failed atomic.Int64
	var firstErr atomic.Value
	var onV2 atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				v, err := infer()
				if err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				served.Add(1)
				if v == "2" {
					onV2.Store(true)
				}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	ctl("alias", "scorer", "champion", "2")
	moved := time.Now() // just after: the script returns once MLflow has the alias
	waitFor(t, 30*time.Second, onV2.Load)
	took := time.Since(moved)
	t.Logf("version 2 served %s after the alias moved in MLflow (poll %s)", took.Round(time.Millisecond), poll)
	if took > poll+time.Second {
		t.Errorf("version 2 served %s after the alias moved: more than the poll interval (%s) and a second to load it", took, poll)
	}

	server.Stop()
	time.Sleep(3 * poll)
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Errorf("%d of %d requests failed, first: %v", failed.Load(), served.Load()+failed.Load(), firstErr.Load())
	}
	if v, err := infer(); err != nil || v != "2" {
		t.Errorf("with MLflow stopped: version %q, %v; want 2 served", v, err)
	}
}

// waitFor polls cond until it holds, or fails the test after limit.
func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not so after %s", limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
