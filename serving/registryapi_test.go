package serving

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/auth"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/registry"
)

func TestRegisterVersionRecord(t *testing.T) {
	g := startGateway(t)
	raw, _ := os.ReadFile(modelzoo.Path(modelzoo.MultiInput))
	md := `{"description": "sums", "tags": {"team": "risk", "validation_status": "PASSED"},
	        "lineage": {"data": "s3://bucket/train.parquet", "code": "git:abc123", "run_id": "run-7"}}`
	r := g.upload("multi", raw, md)
	if r.status != http.StatusCreated {
		t.Fatalf("%d %s", r.status, r.body)
	}
	var v registry.Version
	r.decode(t, &v)
	sum := sha256.Sum256(raw)
	switch {
	case v.Name != "multi" || v.Version != 1 || len(v.UUID) != 36:
		t.Errorf("identity = %s %d %s", v.Name, v.Version, v.UUID)
	case v.SHA256 != hex.EncodeToString(sum[:]) || v.Size != int64(len(raw)):
		t.Errorf("artifact = %s %d", v.SHA256, v.Size)
	case v.CreatedAt.IsZero() || v.CreatedBy != "anonymous":
		t.Errorf("created = %v by %q", v.CreatedAt, v.CreatedBy)
	case v.Status != registry.StatusPassed || v.Tags["team"] != "risk" || v.Lineage.RunID != "run-7" || v.Description != "sums":
		t.Errorf("metadata = %+v", v)
	case len(v.Signature.Inputs) != 2 || v.Signature.Inputs[1].Datatype != "INT64" || v.Signature.Inputs[1].Shape[0] != -1:
		t.Errorf("signature = %+v", v.Signature)
	}
	if v2 := g.register("multi", modelzoo.MultiInput); v2.Version != 2 || v2.Status != registry.StatusPending {
		t.Errorf("second version = %d %s, want 2 PENDING", v2.Version, v2.Status)
	}
}

// registryState is everything a refused upload must leave as it was.
type registryState struct {
	models, audit string
	files         []string
}

func (g *gateway) state() registryState {
	g.t.Helper()
	var files []string
	filepath.WalkDir(filepath.Join(g.dataDir, "artifacts"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	return registryState{
		models: string(g.do(http.MethodGet, "/v1/models", "", nil).body),
		audit:  string(g.do(http.MethodGet, "/v1/audit", "", nil).body),
		files:  files,
	}
}

func TestRefusedUploadsLeaveNothing(t *testing.T) {
	g := startGateway(t, withMaxModelBytes(4<<10))
	g.register("linear", modelzoo.Linear)
	before := g.state()
	read := func(name string) []byte {
		raw, err := os.ReadFile(modelzoo.Path(name))
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	linear := read(modelzoo.Linear)
	tests := []struct {
		name     string
		model    string
		body     func() (string, []byte) // content type and body
		status   int
		contains string
	}{
		{"garbage", "linear", multipartBody(read(modelzoo.Garbage), ""), 400, "not a loadable ONNX model"},
		{"truncated model", "linear", multipartBody(read(modelzoo.Truncated), ""), 400, "not a loadable ONNX model"},
		{"empty file", "linear", multipartBody(nil, ""), 400, "not a loadable ONNX model"},
		{"garbage as a new model", "fresh", multipartBody(read(modelzoo.Garbage), ""), 400, "not a loadable ONNX model"},
		{"too large", "linear", multipartBody(bytes.Repeat(linear, 40), ""), 413, "registry.max_model_bytes"},
		{"truncated multipart body", "linear", func() (string, []byte) {
			ct, body := multipartBody(linear, "")()
			return ct, body[:len(body)/2]
		}, 400, "multipart"},
		{"not multipart", "linear", func() (string, []byte) { return "application/octet-stream", linear }, 400, "multipart"},
		{"no model part", "linear", func() (string, []byte) {
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			mw.WriteField("metadata", "{}")
			mw.Close()
			return mw.FormDataContentType(), buf.Bytes()
		}, 400, `part "model"`},
		{"unknown part", "linear", func() (string, []byte) {
			var buf bytes.Buffer
			mw := multipart.NewWriter(&buf)
			mw.WriteField("extra", "x")
			fw, _ := mw.CreateFormFile("model", "m.onnx")
			fw.Write(linear)
			mw.Close()
			return mw.FormDataContentType(), buf.Bytes()
		}, 400, `part "extra"`},
		{"bad metadata JSON", "linear", multipartBody(linear, `{"description": `), 400, "metadata: malformed JSON"},
		{"unknown metadata field", "linear", multipartBody(linear, `{"owner": "me"}`), 400, `metadata: unknown field "owner"`},
		{"bad validation status", "linear", multipartBody(linear, `{"tags": {"validation_status": "OK"}}`), 400, "PENDING, PASSED, FAILED"},
		{"bad model name", "bad@name", multipartBody(linear, ""), 400, "model name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ct, body := tt.body()
			r := g.do(http.MethodPost, "/v1/models/"+tt.model+"/versions", ct, body)
			if r.status != tt.status {
				t.Fatalf("status %d %s, want %d", r.status, r.body, tt.status)
			}
			if msg := r.errorMessage(t); !strings.Contains(msg, tt.contains) {
				t.Errorf("error %q does not contain %q", msg, tt.contains)
			}
			after := g.state()
			if after.models != before.models || after.audit != before.audit || strings.Join(after.files, ",") != strings.Join(before.files, ",") {
				t.Errorf("registry changed:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}
}

func multipartBody(model []byte, metadata string) func() (string, []byte) {
	return func() (string, []byte) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		if metadata != "" {
			mw.WriteField("metadata", metadata)
		}
		fw, _ := mw.CreateFormFile("model", "model.onnx")
		fw.Write(model)
		mw.Close()
		return mw.FormDataContentType(), buf.Bytes()
	}
}

func TestRegistryLifecycle(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	g.register("linear", modelzoo.LinearV2)
	g.setAlias("linear", "champion", 1)

	steps := []struct {
		method, path, body string
		status             int
		contains           string
	}{
		{"GET", "/v1/models/linear", "", 200, `"champion":1`},
		{"GET", "/v1/models/nope", "", 404, `model \"nope\" not found`},
		{"GET", "/v1/models/linear/versions/2", "", 200, `"version":2`},
		{"GET", "/v1/models/linear/versions/3", "", 404, "no version 3"},
		{"GET", "/v1/models/linear/versions/x", "", 400, "positive whole number"},
		{"PUT", "/v1/models/linear/versions/2/tags/validation_status", `{"value":"PASSED"}`, 200, `"status":"PASSED"`},
		{"PUT", "/v1/models/linear/versions/2/tags/validation_status", `{"value":"DONE"}`, 400, "PENDING, PASSED, FAILED"},
		{"PUT", "/v1/models/linear/versions/2/tags/owner", `{"value":"risk-team"}`, 200, `"owner":"risk-team"`},
		{"PUT", "/v1/models/linear/versions/2/tags/owner", `{"valeu":"x"}`, 400, `unknown field \"valeu\"`},
		{"PUT", "/v1/models/linear/aliases/champion", `{"version":9}`, 404, "no version 9"},
		{"PUT", "/v1/models/linear/aliases/9lives", `{"version":1}`, 400, "must start with a letter"},
		{"PUT", "/v1/models/linear/aliases/champion", `{}`, 400, `\"version\" is required`},
		{"DELETE", "/v1/models/linear/versions/1", "", 409, `alias \"champion\"`},
		{"PUT", "/v1/models/linear/aliases/champion", `{"version":2}`, 200, `"version":2`},
		{"DELETE", "/v1/models/linear/versions/1", "", 204, ""},
		{"GET", "/v1/models/linear/versions/1", "", 404, "no version 1"},
		{"POST", "/v2/models/linear/versions/1/infer", `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`, 404, "no version 1"},
		{"DELETE", "/v1/models/linear/aliases/champion", "", 204, ""},
		{"DELETE", "/v1/models/linear/aliases/champion", "", 404, `no alias \"champion\"`},
		{"GET", "/v1/audit?model=linear&limit=abc", "", 400, "limit"},
	}
	for _, s := range steps {
		r := g.do(s.method, s.path, "application/json", []byte(s.body))
		if r.status != s.status || !strings.Contains(string(r.body), s.contains) {
			t.Fatalf("%s %s %s: %d %s, want %d containing %s", s.method, s.path, s.body, r.status, r.body, s.status, s.contains)
		}
	}
	if files := g.state().files; len(files) != 1 {
		t.Errorf("artifact files after deleting version 1: %v, want one", files)
	}

	var audit struct {
		Events []registry.AuditEvent `json:"events"`
	}
	g.do("GET", "/v1/audit?model=linear", "", nil).decode(t, &audit)
	var actions []string
	for _, e := range audit.Events {
		actions = append(actions, e.Action)
		if e.Actor != "anonymous" || e.Model != "linear" || e.Time.IsZero() {
			t.Errorf("event %+v", e)
		}
	}
	want := "register_version register_version set_alias set_tag set_tag set_alias delete_version delete_alias"
	if got := strings.Join(actions, " "); got != want {
		t.Errorf("audit actions:\n got %s\nwant %s", got, want)
	}
	move := audit.Events[5]
	if string(move.Before) != `{"alias":"champion","version":1}` || string(move.After) != `{"alias":"champion","version":2}` {
		t.Errorf("alias move before %s after %s", move.Before, move.After)
	}
	g.do("GET", "/v1/audit?model=linear&after=6&limit=1", "", nil).decode(t, &audit)
	if len(audit.Events) != 1 || audit.Events[0].Seq != 7 {
		t.Errorf("paged audit = %+v", audit.Events)
	}
}

func keyFor(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// TestRoles checks that each route asks for its role: 401 without a key, 403
// with the wrong one.
func TestRoles(t *testing.T) {
	g := startGateway(t, withKeys(
		auth.Key{Name: "app", SHA256: keyFor("k-predict"), Roles: []auth.Role{auth.Predict}},
		auth.Key{Name: "alice", SHA256: keyFor("k-ds"), Roles: []auth.Role{auth.DataScientist}},
		auth.Key{Name: "sam", SHA256: keyFor("k-sre"), Roles: []auth.Role{auth.SRE}},
		auth.Key{Name: "root", SHA256: keyFor("k-admin"), Roles: []auth.Role{auth.Admin}},
	))
	g.apiKey = "k-ds"
	g.register("linear", modelzoo.Linear)
	infer := `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`
	routes := []struct {
		method, path, body string
		// status per key: none, predict, data-scientist, sre, admin
		want [5]int
	}{
		{"GET", "/v2/health/ready", "", [5]int{200, 200, 200, 200, 200}},
		{"POST", "/v2/models/linear/infer", infer, [5]int{401, 200, 403, 403, 200}},
		{"GET", "/v2/models/linear", "", [5]int{401, 200, 403, 403, 200}},
		{"GET", "/v1/models", "", [5]int{401, 200, 200, 200, 200}},
		{"PUT", "/v1/models/linear/versions/1/tags/owner", `{"value":"x"}`, [5]int{401, 403, 200, 403, 200}},
		{"PUT", "/v1/models/linear/aliases/champion", `{"version":1}`, [5]int{401, 403, 403, 200, 200}},
		{"DELETE", "/v1/models/linear/aliases/champion", "", [5]int{401, 403, 403, 204, 404}},
		{"GET", "/v1/audit", "", [5]int{401, 200, 200, 200, 200}},
		{"PUT", "/v1/endpoints/e", `{"variants": [{"name": "a", "model": "linear/1", "weight": 1}]}`, [5]int{401, 403, 403, 201, 200}},
		{"PATCH", "/v1/endpoints/e/traffic", `{"weights": {"a": 2}}`, [5]int{401, 403, 403, 200, 200}},
		{"POST", "/v1/endpoints/e/predict", `{"inputs": {"x": [[1, 2, 3, 4]]}}`, [5]int{401, 200, 403, 403, 200}},
		{"GET", "/v1/endpoints/e/history", "", [5]int{401, 200, 200, 200, 200}},
		{"POST", "/v1/endpoints/e/canary/abort", "", [5]int{401, 403, 403, 409, 409}},
		{"PUT", "/v1/feature-views/v", `{"entities": ["id"], "features": [{"name": "f", "type": "float"}]}`, [5]int{401, 403, 201, 403, 200}},
		{"POST", "/v1/feature-views/v/rows", `{"rows": [{"id": "1", "f": 1}]}`, [5]int{401, 403, 200, 403, 200}},
		{"POST", "/v1/features/online", `{"features": ["v:f"], "entities": {"id": ["1"]}}`, [5]int{401, 200, 403, 403, 200}},
		{"DELETE", "/v1/endpoints/e", "", [5]int{401, 403, 403, 204, 404}},
	}
	keys := []string{"", "k-predict", "k-ds", "k-sre", "k-admin"}
	for _, rt := range routes {
		for i, key := range keys {
			g.apiKey = key
			if r := g.do(rt.method, rt.path, "application/json", []byte(rt.body)); r.status != rt.want[i] {
				t.Errorf("%s %s with key %q: %d %s, want %d", rt.method, rt.path, key, r.status, r.body, rt.want[i])
			}
		}
	}
	g.apiKey = "wrong"
	if r := g.do("GET", "/v1/models", "", nil); r.status != 401 || !strings.Contains(r.errorMessage(t), "unknown API key") {
		t.Errorf("wrong key: %d %s", r.status, r.body)
	}
	g.apiKey = "k-admin"
	var audit struct {
		Events []registry.AuditEvent `json:"events"`
	}
	g.do("GET", "/v1/audit", "", nil).decode(t, &audit)
	if audit.Events[0].Actor != "alice" || audit.Events[len(audit.Events)-1].Actor != "sam" {
		t.Errorf("audit actors: first %q last %q, want alice and sam", audit.Events[0].Actor, audit.Events[len(audit.Events)-1].Actor)
	}
}
