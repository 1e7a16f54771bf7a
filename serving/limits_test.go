package serving_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/auth"
	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/serving"
)

// TestLimitsOverHTTP sends requests over each bound to a real server: the
// answer is a 400 or 413 naming the bound, and nothing is written.
func TestLimitsOverHTTP(t *testing.T) {
	g := startGateway(t, withConfig(func(c *config.Config) {
		c.Limits.MaxRows, c.Limits.MaxTensorElements, c.Limits.MaxStringBytes = 2, 8, 4
	}))
	g.register("linear", modelzoo.Linear)
	if r := g.do("PUT", "/v1/feature-views/v", "application/json",
		[]byte(`{"entities": ["id"], "features": [{"name": "f", "type": "float"}, {"name": "s", "type": "string"}]}`)); r.status != 201 {
		t.Fatalf("put view: %d %s", r.status, r.body)
	}
	tests := []struct {
		name, path, body string
		status           int
		want             string
	}{
		{"v2 at the bounds", "/v2/models/linear/infer", `{"inputs":[{"name":"x","shape":[2,4],"datatype":"FP32","data":[1,2,3,4,5,6,7,8]}]}`, 200, ""},
		{"v2 batch", "/v2/models/linear/infer", `{"inputs":[{"name":"x","shape":[3,1],"datatype":"FP32","data":[1,2,3]}]}`, 400, "limits.max_rows (2)"},
		{"v2 elements", "/v2/models/linear/infer", `{"inputs":[{"name":"x","shape":[1,9],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9]}]}`, 413, "limits.max_tensor_elements (8)"},
		{"v2 string", "/v2/models/linear/infer", `{"inputs":[{"name":"x","shape":[1],"datatype":"BYTES","data":["abcde"]}]}`, 400, "limits.max_string_bytes (4)"},
		{"predict at the bounds", "/v1/models/linear/predict", `{"inputs": {"x": [[1, 2, 3, 4], [5, 6, 7, 8]]}}`, 200, ""},
		{"predict rows", "/v1/models/linear/predict", `{"inputs": {"x": [[1, 2, 3, 4], [5, 6, 7, 8], [1, 2, 3, 4]]}}`, 400, "inputs.x: a batch of 3 rows (shape[0]) is more than limits.max_rows (2)"},
		{"predict elements", "/v1/models/linear/predict", `{"inputs": {"x": [[1, 2, 3, 4, 5, 6, 7, 8, 9]]}}`, 413, "inputs.x: shape [1,9] holds 9 elements, more than limits.max_tensor_elements (8)"},
		{"predict entity rows", "/v1/models/linear/predict", `{"entities": {"id": ["a", "b", "c"]}}`, 400, "entities.id: 3 rows is more than limits.max_rows (2)"},
		{"predict entity string", "/v1/models/linear/predict", `{"entities": {"id": ["abcde"]}}`, 400, "entities.id[0]: a string of 5 bytes is longer than limits.max_string_bytes (4)"},
		{"endpoint predict entity rows", "/v1/endpoints/nope/predict", `{"entities": {"id": ["a", "b", "c"]}}`, 400, "limits.max_rows (2)"},
		{"rows written", "/v1/feature-views/v/rows", `{"rows": [{"id": "a"}, {"id": "b"}, {"id": "c"}]}`, 400, "rows: 3 rows is more than limits.max_rows (2)"},
		{"string feature", "/v1/feature-views/v/rows", `{"rows": [{"id": "a", "s": "abcde"}]}`, 400, "rows[0].s: a string of 5 bytes is longer than limits.max_string_bytes (4)"},
		{"entity key written", "/v1/feature-views/v/rows", `{"rows": [{"id": "abcde"}]}`, 400, "rows[0].id: a string of 5 bytes"},
		{"rows at the bounds", "/v1/feature-views/v/rows", `{"rows": [{"id": "a", "s": "abcd"}, {"id": "b", "f": 1}]}`, 200, ""},
		{"online rows", "/v1/features/online", `{"features": ["v:f"], "entities": {"id": ["a", "b", "c"]}}`, 400, "entities.id: 3 rows is more than limits.max_rows (2)"},
		{"online string", "/v1/features/online", `{"features": ["v:f"], "entities": {"id": ["abcde"]}}`, 400, "limits.max_string_bytes (4)"},
		{"online at the bounds", "/v1/features/online", `{"features": ["v:s"], "entities": {"id": ["a", "b"]}}`, 200, `"values":["abcd"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := g.do("POST", tt.path, "application/json", []byte(tt.body))
			if r.status != tt.status || !strings.Contains(string(r.body), tt.want) {
				t.Errorf("%d %s, want %d containing %q", r.status, r.body, tt.status, tt.want)
			}
		})
	}
}

// TestRateLimit holds a key to one request per ~17 minutes: the second is
// a 429 with Retry-After that names the key and its limit; another key and
// the health checks are not held.
func TestRateLimit(t *testing.T) {
	keys := []auth.Key{
		{Name: "app", SHA256: keyFor("k-app"), Roles: []auth.Role{auth.Predict}},
		{Name: "root", SHA256: keyFor("k-root"), Roles: []auth.Role{auth.Admin}},
	}
	g := startGateway(t, withKeys(keys...), withRoleLimit(auth.Predict, 0.001, 1))
	g.apiKey = "k-app"
	if r := g.do("GET", "/v1/models", "", nil); r.status != 200 {
		t.Fatalf("first request: %d %s", r.status, r.body)
	}
	req, _ := http.NewRequest("POST", g.url+"/v1/models/linear/predict", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer k-app")
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "1000" ||
		!strings.Contains(string(body), `{"error":"rate limited: key \"app\" is over its limit of 0.001 requests per second (burst 1); retry in 1000 s"}`) {
		t.Errorf("over the limit: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	g.apiKey = "k-root"
	for range 3 {
		if r := g.do("GET", "/v1/models", "", nil); r.status != 200 {
			t.Errorf("an unlimited key: %d %s", r.status, r.body)
		}
	}
	g.apiKey = "k-app"
	if r := g.do("GET", "/v2/health/live", "", nil); r.status != 200 {
		t.Errorf("health check of a limited key: %d", r.status)
	}
}

// TestIdentifierBounds: ids and units a caller sends are keys and labels,
// not documents: over 256 bytes is a 400 that names the field.
func TestIdentifierBounds(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	long := strings.Repeat("x", 300)
	tests := []struct {
		name, path, body string
		header           map[string]string
		want             string
	}{
		{"v2 id", "/v2/models/linear/infer", `{"id":"` + long + `","inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`, nil, "id: 300 bytes is longer than 256"},
		{"predict request_id", "/v1/models/linear/predict", `{"request_id":"` + long + `","inputs":{"x":[[1,2,3,4]]}}`, nil, "request_id: 300 bytes is longer than 256"},
		{"predict unit", "/v1/endpoints/e/predict", `{"unit":"` + long + `","inputs":{"x":[[1,2,3,4]]}}`, nil, "unit: 300 bytes is longer than 256"},
		{"unit header", "/v1/endpoints/e/predict", `{"inputs":{"x":[[1,2,3,4]]}}`, map[string]string{serving.HeaderUnit: long}, "X-Mlgate-Unit: 300 bytes is longer than 256"},
	}
	if r := g.do("PUT", "/v1/endpoints/e", "application/json", []byte(`{"variants":[{"name":"a","model":"linear/1","weight":100}]}`)); r.status >= 300 {
		t.Fatalf("put endpoint: %d %s", r.status, r.body)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{"Content-Type": "application/json"}
			for k, v := range tt.header {
				h[k] = v
			}
			r := g.send("POST", tt.path, h, []byte(tt.body), false)
			if r.status != 400 || !strings.Contains(string(r.body), tt.want) {
				t.Errorf("%d %s, want 400 containing %q", r.status, r.body, tt.want)
			}
		})
	}
}
