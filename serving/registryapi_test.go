package serving_test

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/auth"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/telemetry"
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
	var v2 registry.Version
	if r := g.upload("multi", raw, ""); r.status != http.StatusCreated {
		t.Fatalf("%d %s", r.status, r.body)
	} else if r.decode(t, &v2); v2.Version != 2 || v2.Status != registry.StatusPending {
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
	pages := []struct {
		query string
		want  []uint64 // the events' Seq
	}{
		{"order=newest&limit=2", []uint64{8, 7}},
		{"order=newest&before=7&limit=2", []uint64{6, 5}},
		{"order=newest&before=3&after=1", []uint64{2}},
		{"order=oldest&before=3", []uint64{1, 2}},
	}
	for _, p := range pages {
		g.do("GET", "/v1/audit?model=linear&"+p.query, "", nil).decode(t, &audit)
		var seqs []uint64
		for _, e := range audit.Events {
			seqs = append(seqs, e.Seq)
		}
		if !slices.Equal(seqs, p.want) {
			t.Errorf("audit?%s: events %v, want %v", p.query, seqs, p.want)
		}
	}
	for _, bad := range []struct{ query, want string }{
		{"order=up", `query parameter order="up": must be oldest or newest`},
		{"before=-1", `query parameter before="-1": must be a sequence number`},
	} {
		if msg := g.do("GET", "/v1/audit?"+bad.query, "", nil).errorMessage(t); msg != bad.want {
			t.Errorf("audit?%s: %q, want %q", bad.query, msg, bad.want)
		}
	}
}

func keyFor(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// roleKeys are the keys of TestRoles, one per role, and roleSecrets their
// secrets in the order of a roleCase's want: none, predict, data-scientist,
// sre, admin.
var (
	roleKeys = []auth.Key{
		{Name: "app", SHA256: keyFor("k-predict"), Roles: []auth.Role{auth.Predict}},
		{Name: "alice", SHA256: keyFor("k-ds"), Roles: []auth.Role{auth.DataScientist}},
		{Name: "sam", SHA256: keyFor("k-sre"), Roles: []auth.Role{auth.SRE}},
		{Name: "root", SHA256: keyFor("k-admin"), Roles: []auth.Role{auth.Admin}},
	}
	roleSecrets = []string{"", "k-predict", "k-ds", "k-sre", "k-admin"}
)

// roleCase is a request to one route, sent with each key in turn.
type roleCase struct {
	method string
	route  string // the route as registered, e.g. /v1/models/:name
	path   string
	body   string
	ctype  string // "" is application/json
	// status per key: none, predict, data-scientist, sre, admin
	want [5]int
}

// roleCases has a row for every route of Server.routes, in an order in
// which each request finds what it needs (a model, a view, an endpoint, a
// monitor) made by an earlier one; the data-scientist registers version 1 of
// linear, with a baseline, before the first row.
func roleCases(t *testing.T) []roleCase {
	raw, err := os.ReadFile(modelzoo.Path(modelzoo.Linear))
	if err != nil {
		t.Fatal(err)
	}
	upload, uploadBody := multipartBody(raw, validated)()
	infer := `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`
	predict := `{"inputs": {"x": [[1, 2, 3, 4]]}}`
	every := [5]int{200, 200, 200, 200, 200}
	anyKey := [5]int{401, 200, 200, 200, 200}
	predictor := [5]int{401, 200, 403, 403, 200}
	return []roleCase{
		{"GET", "/v2/health/live", "/v2/health/live", "", "", every},
		{"GET", "/v2/health/ready", "/v2/health/ready", "", "", every},
		{"GET", "/metrics", "/metrics", "", "", every},
		// The console's assets need no key; / redirects to them.
		{"GET", "/", "/", "", "", every},
		{"GET", "/ui/*", "/ui/js/main.js", "", "", every},

		{"GET", "/v2", "/v2", "", "", predictor},
		{"GET", "/v2/models/:model", "/v2/models/linear", "", "", predictor},
		{"GET", "/v2/models/:model/ready", "/v2/models/linear/ready", "", "", predictor},
		{"GET", "/v2/models/stats", "/v2/models/stats", "", "", predictor},
		{"POST", "/v2/repository/index", "/v2/repository/index", "", "", predictor},
		{"GET", "/v2/models/:model/config", "/v2/models/linear/config", "", "", predictor},
		{"GET", "/v2/models/:model/stats", "/v2/models/linear/stats", "", "", predictor},
		{"GET", "/v2/models/:model/versions/:version/config", "/v2/models/linear/versions/1/config", "", "", predictor},
		{"GET", "/v2/models/:model/versions/:version/stats", "/v2/models/linear/versions/1/stats", "", "", predictor},
		{"POST", "/v2/models/:model/infer", "/v2/models/linear/infer", infer, "", predictor},
		{"GET", "/v2/models/:model/versions/:version", "/v2/models/linear/versions/1", "", "", predictor},
		{"GET", "/v2/models/:model/versions/:version/ready", "/v2/models/linear/versions/1/ready", "", "", predictor},
		{"POST", "/v2/models/:model/versions/:version/infer", "/v2/models/linear/versions/1/infer", infer, "", predictor},

		{"GET", "/v1/models", "/v1/models", "", "", anyKey},
		{"GET", "/v1/models/:name", "/v1/models/linear", "", "", anyKey},
		// The data-scientist registers version 2, the admin version 3.
		{"POST", "/v1/models/:name/versions", "/v1/models/linear/versions", string(uploadBody), upload, [5]int{401, 403, 201, 403, 201}},
		{"GET", "/v1/models/:name/versions/:version", "/v1/models/linear/versions/1", "", "", anyKey},
		{"PUT", "/v1/models/:name/versions/:version/tags/:key", "/v1/models/linear/versions/1/tags/owner", `{"value":"x"}`, "", [5]int{401, 403, 200, 403, 200}},
		{"PUT", "/v1/models/:name/aliases/:alias", "/v1/models/linear/aliases/champion", `{"version":1}`, "", [5]int{401, 403, 403, 200, 200}},
		{"DELETE", "/v1/models/:name/aliases/:alias", "/v1/models/linear/aliases/champion", "", "", [5]int{401, 403, 403, 204, 404}},
		{"DELETE", "/v1/models/:name/versions/:version", "/v1/models/linear/versions/3", "", "", [5]int{401, 403, 204, 403, 404}},
		{"GET", "/v1/audit", "/v1/audit", "", "", anyKey},
		{"GET", "/v1/whoami", "/v1/whoami", "", "", anyKey},
		{"GET", "/v1/status", "/v1/status", "", "", anyKey},

		{"POST", "/v1/models/:name/predict", "/v1/models/linear/predict", predict, "", predictor},
		{"POST", "/v1/models/:name/:version/predict", "/v1/models/linear/1/predict", predict, "", predictor},

		{"GET", "/v1/feature-views", "/v1/feature-views", "", "", anyKey},
		{"PUT", "/v1/feature-views/:view", "/v1/feature-views/v", `{"entities": ["id"], "features": [{"name": "f", "type": "float"}]}`, "", [5]int{401, 403, 201, 403, 200}},
		{"GET", "/v1/feature-views/:view", "/v1/feature-views/v", "", "", anyKey},
		{"POST", "/v1/feature-views/:view/rows", "/v1/feature-views/v/rows", `{"rows": [{"id": "1", "f": 1}]}`, "", [5]int{401, 403, 200, 403, 200}},
		{"POST", "/v1/features/online", "/v1/features/online", `{"features": ["v:f"], "entities": {"id": ["1"]}}`, "", predictor},
		{"DELETE", "/v1/feature-views/:view", "/v1/feature-views/v", "", "", [5]int{401, 403, 204, 403, 404}},

		{"GET", "/v1/endpoints", "/v1/endpoints", "", "", anyKey},
		{"PUT", "/v1/endpoints/:endpoint", "/v1/endpoints/e", `{"variants": [{"name": "a", "model": "linear/1", "weight": 1}]}`, "", [5]int{401, 403, 403, 201, 200}},
		{"GET", "/v1/endpoints/:endpoint", "/v1/endpoints/e", "", "", anyKey},
		{"PATCH", "/v1/endpoints/:endpoint/traffic", "/v1/endpoints/e/traffic", `{"weights": {"a": 2}}`, "", [5]int{401, 403, 403, 200, 200}},
		{"GET", "/v1/endpoints/:endpoint/history", "/v1/endpoints/e/history", "", "", anyKey},
		{"POST", "/v1/endpoints/:endpoint/predict", "/v1/endpoints/e/predict", predict, "", predictor},
		// The SRE starts a canary; the admin's second start conflicts with it.
		{"POST", "/v1/endpoints/:endpoint/canary", "/v1/endpoints/e/canary", `{"model": "linear/2", "steps": [10, 100], "interval": "1h"}`, "", [5]int{401, 403, 403, 200, 409}},
		// The SRE aborts it; there is none left for the admin to abort.
		{"POST", "/v1/endpoints/:endpoint/canary/:command", "/v1/endpoints/e/canary/abort", "", "", [5]int{401, 403, 403, 200, 409}},
		{"DELETE", "/v1/endpoints/:endpoint", "/v1/endpoints/e", "", "", [5]int{401, 403, 403, 204, 404}},

		{"GET", "/v1/tables", "/v1/tables", "", "", anyKey},
		{"POST", "/v1/tables/delete", "/v1/tables/delete", `{"column": "id", "value": "1"}`, "", [5]int{401, 403, 200, 403, 200}},
		{"POST", "/v1/labels", "/v1/labels", `{"labels": [{"request_id": "r1", "label": 1}]}`, "", [5]int{401, 403, 200, 403, 200}},

		{"GET", "/v1/monitors", "/v1/monitors", "", "", anyKey},
		{"PUT", "/v1/monitors/:monitor", "/v1/monitors/m", `{"model": "linear/1", "window": "1h", "thresholds": {"psi": 0.2}}`, "", [5]int{401, 403, 200, 403, 200}},
		{"GET", "/v1/monitors/:monitor/report", "/v1/monitors/m/report", "", "", anyKey},
		{"POST", "/v1/monitors/:monitor/run", "/v1/monitors/m/run", `{"from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}`, "", [5]int{401, 403, 200, 403, 200}},
		{"DELETE", "/v1/monitors/:monitor", "/v1/monitors/m", "", "", [5]int{401, 403, 204, 403, 404}},
	}
}

// TestRoles checks that each route asks for its role: 401 without a key, 403
// with the wrong one, and with the right one an answer from the route.
func TestRoles(t *testing.T) {
	m, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, withKeys(roleKeys...), withMetrics(m))
	g.apiKey = "k-ds"
	if r := g.upload("linear", mustRead(t, modelzoo.Path(modelzoo.Linear)), `{"tags": {"validation_status": "PASSED"}, "baseline": `+linearBaseline(t)+`}`); r.status != 201 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	for _, rc := range roleCases(t) {
		ctype := cmp.Or(rc.ctype, "application/json")
		for i, key := range roleSecrets {
			g.apiKey = key
			if r := g.do(rc.method, rc.path, ctype, []byte(rc.body)); r.status != rc.want[i] {
				t.Errorf("%s %s with key %q: %d %.300s, want %d", rc.method, rc.path, key, r.status, r.body, rc.want[i])
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
	actors := make(map[string]string) // action -> actor of its first event
	for _, e := range audit.Events {
		if _, ok := actors[e.Action]; !ok {
			actors[e.Action] = e.Actor
		}
	}
	if actors["register_version"] != "alice" || actors["set_alias"] != "sam" || actors["put_monitor"] != "alice" {
		t.Errorf("audit actors %v, want the names of the keys that acted", actors)
	}
}

// TestRolesCoverEveryRoute fails when a route of the server has no row in
// roleCases, so that no route skips TestRoles, or when a row's route is
// not registered, or its path does not match its route.
func TestRolesCoverEveryRoute(t *testing.T) {
	m, err := telemetry.New()
	if err != nil {
		t.Fatal(err)
	}
	g := startGateway(t, withMetrics(m))
	rows := make(map[string]bool)
	for _, rc := range roleCases(t) {
		rows[rc.method+" "+rc.route] = true
		if !routeMatches(rc.route, rc.path) {
			t.Errorf("row %s %s: path %s does not match the route", rc.method, rc.route, rc.path)
		}
	}
	registered := make(map[string]bool)
	for _, r := range g.server.App().GetRoutes(true) {
		if r.Method == http.MethodHead {
			continue // fiber adds HEAD to every GET route
		}
		registered[r.Method+" "+r.Path] = true
		if !rows[r.Method+" "+r.Path] {
			t.Errorf("route %s %s has no row in roleCases: add one with the status each role gets", r.Method, r.Path)
		}
	}
	for row := range rows {
		if !registered[row] {
			t.Errorf("roleCases has a row for %s, which is not a route", row)
		}
	}
}

// routeMatches reports whether path matches a fiber route with :params and
// a last "*", which matches the rest of the path.
func routeMatches(route, path string) bool {
	rs, ps := strings.Split(route, "/"), strings.Split(path, "/")
	if rs[len(rs)-1] == "*" && len(ps) >= len(rs) {
		rs, ps = rs[:len(rs)-1], ps[:len(rs)-1]
	}
	if len(rs) != len(ps) {
		return false
	}
	for i := range rs {
		if !strings.HasPrefix(rs[i], ":") && rs[i] != ps[i] || ps[i] == "" && rs[i] != "" {
			return false
		}
	}
	return true
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
