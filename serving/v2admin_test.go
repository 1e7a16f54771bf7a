package serving_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/mlgate/mlgate/internal/modelzoo"
)

// TestModelConfig: GET /v2/models/{m}[/versions/{v}]/config gives the
// version's inputs and outputs in the shape of Triton's model configuration,
// which tritonclient's get_model_config reads.
func TestModelConfig(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	for _, path := range []string{"/v2/models/linear/config", "/v2/models/linear/versions/1/config"} {
		r := g.do(http.MethodGet, path, "", nil)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		var cfg struct {
			Name         string `json:"name"`
			Platform     string `json:"platform"`
			MaxBatchSize *int   `json:"max_batch_size"`
			Input        []struct {
				Name     string  `json:"name"`
				DataType string  `json:"data_type"`
				Dims     []int64 `json:"dims"`
			} `json:"input"`
			Output []struct {
				Name     string `json:"name"`
				DataType string `json:"data_type"`
			} `json:"output"`
		}
		if err := json.Unmarshal(r.body, &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.Name != "linear" || cfg.Platform == "" || cfg.MaxBatchSize == nil || *cfg.MaxBatchSize != 0 ||
			len(cfg.Input) != 1 || cfg.Input[0].Name != "x" || cfg.Input[0].DataType != "TYPE_FP32" || len(cfg.Input[0].Dims) != 2 ||
			len(cfg.Output) == 0 || cfg.Output[0].DataType != "TYPE_FP32" {
			t.Errorf("%s: %s", path, r.body)
		}
	}
	if r := g.do(http.MethodGet, "/v2/models/nope/config", "", nil); r.status != 404 {
		t.Errorf("config of an unknown model: %d %s", r.status, r.body)
	}
}

// TestModelStatistics: served and failed requests, and the time of each
// stage, counted per version, as the statistics extension gives them.
func TestModelStatistics(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	good := []byte(`{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`)
	bad := []byte(`{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`)
	for range 3 {
		if r := g.do(http.MethodPost, "/v2/models/linear/infer", "application/json", good); r.status != 200 {
			t.Fatalf("infer: %d %s", r.status, r.body)
		}
	}
	if r := g.do(http.MethodPost, "/v2/models/linear/infer", "application/json", bad); r.status != 400 {
		t.Fatalf("bad infer: %d %s", r.status, r.body)
	}
	type count struct {
		Count int64 `json:"count"`
		NS    int64 `json:"ns"`
	}
	for _, path := range []string{"/v2/models/stats", "/v2/models/linear/stats", "/v2/models/linear/versions/1/stats"} {
		r := g.do(http.MethodGet, path, "", nil)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		var got struct {
			ModelStats []struct {
				Name           string           `json:"name"`
				Version        string           `json:"version"`
				LastInference  int64            `json:"last_inference"`
				InferenceCount int64            `json:"inference_count"`
				ExecutionCount int64            `json:"execution_count"`
				InferenceStats map[string]count `json:"inference_stats"`
			} `json:"model_stats"`
		}
		if err := json.Unmarshal(r.body, &got); err != nil {
			t.Fatal(err)
		}
		if len(got.ModelStats) != 1 {
			t.Fatalf("%s: %s; want one version", path, r.body)
		}
		m := got.ModelStats[0]
		st := m.InferenceStats
		if m.Name != "linear" || m.Version != "1" || m.InferenceCount != 3 || m.ExecutionCount != 3 || m.LastInference == 0 ||
			st["success"].Count != 3 || st["success"].NS <= 0 || st["fail"].Count != 1 ||
			st["compute_infer"].Count != 3 || st["compute_infer"].NS <= 0 || st["compute_output"].Count != 3 || st["compute_input"].Count != 4 {
			t.Errorf("%s: %s", path, r.body)
		}
	}
}

// TestRepositoryIndex: every version, READY when it serves; the body may
// ask for the ready ones only, and a body that does not decode is a 400.
func TestRepositoryIndex(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	g.register("linear", modelzoo.Linear)
	for _, body := range []string{"", `{}`, `{"ready": true}`} {
		r := g.do(http.MethodPost, "/v2/repository/index", "application/json", []byte(body))
		var got []map[string]string
		if err := json.Unmarshal(r.body, &got); err != nil || r.status != 200 {
			t.Fatalf("index with %q: %d %s", body, r.status, r.body)
		}
		if len(got) != 2 || got[0]["name"] != "linear" || got[0]["version"] != "1" || got[1]["version"] != "2" || got[1]["state"] != "READY" {
			t.Errorf("index with %q: %s", body, r.body)
		}
	}
	if r := g.do(http.MethodPost, "/v2/repository/index", "application/json", []byte(`{"ready": "yes"}`)); r.status != 400 {
		t.Errorf("a bad index request: %d %s", r.status, r.body)
	}
}
