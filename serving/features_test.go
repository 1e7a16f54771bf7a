package serving_test

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/serving/onnx"
)

const userView = `{"entities": ["user_id"], "features": [
	{"name": "age", "type": "float"}, {"name": "income", "type": "double"},
	{"name": "visits", "type": "int"}, {"name": "city", "type": "string"}], "ttl": "24h"}`

// multiSpec fills multi_input's a (FP32, 3 wide) and b (INT64, 2 wide), and
// registers it validated, as champion requires.
const multiSpec = `{"tags": {"validation_status": "PASSED"}, "feature_spec": {"entities": ["user_id"],
	"inputs": {"a": ["user:age", "user:income", "request:hour"], "b": ["user:visits", "request:count"]},
	"defaults": {"user:age": 30, "user:income": 0.5, "user:visits": 7}}}`

func (g *gateway) must(method, path, body string, status int) response {
	g.t.Helper()
	r := g.do(method, path, "application/json", []byte(body))
	if r.status != status {
		g.t.Fatalf("%s %s: %d %s, want %d", method, path, r.status, r.body, status)
	}
	return r
}

func (g *gateway) registerWith(name, file, metadata string) response {
	g.t.Helper()
	raw, err := os.ReadFile(modelzoo.Path(file))
	if err != nil {
		g.t.Fatal(err)
	}
	return g.upload(name, raw, metadata)
}

// TestPredictWithFeatures checks that predict answers exactly what the model
// gives on the stored values, the defaults for missing and stale ones, and
// the request values, computed here through ONNX Runtime directly.
func TestPredictWithFeatures(t *testing.T) {
	for _, store := range []string{"embedded", "redis", "cassandra"} {
		t.Run(store, func(t *testing.T) { testPredictWithFeatures(t, store) })
	}
}

func testPredictWithFeatures(t *testing.T, store string) {
	var g *gateway
	if store == "embedded" {
		g = startGateway(t)
	} else {
		g = startGateway(t, withStore(store))
	}
	g.must("PUT", "/v1/feature-views/user", strings.Replace(userView, `"ttl": "24h"`, `"ttl": "24h", "store": "`+store+`"`, 1), 201)
	now := time.Now().UTC()
	old := now.Add(-48 * time.Hour).Format(time.RFC3339)
	g.must("POST", "/v1/feature-views/user/rows", `{"rows": [
		{"user_id": "u1", "age": 41.5, "income": 1234.25, "visits": 3, "city": "Paris"},
		{"user_id": "u2", "age": 22, "visits": 9},
		{"user_id": "u3", "age": 77, "income": 99, "visits": 1, "event_ts": "`+old+`"}]}`, 200)
	if r := g.registerWith("scorer", modelzoo.MultiInput, multiSpec); r.status != 201 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}

	r := g.must("POST", "/v1/models/scorer/predict", `{"request_id": "req-1", "debug": true,
		"entities": {"user_id": ["u1", "u2", "u3", "u4"]},
		"request": {"hour": [13, 9, 1, 2], "count": [1, 2, 3, 4]}}`, 200)
	var got struct {
		RequestID string                     `json:"request_id"`
		Model     map[string]any             `json:"model"`
		Outputs   map[string]json.RawMessage `json:"outputs"`
		Status    []map[string]string        `json:"feature_status"`
	}
	r.decode(t, &got)

	// u1 all present; u2 income missing; u3 stale; u4 unknown.
	a := []float32{41.5, 1234.25, 13, 22, 0.5, 9, 30, 0.5, 1, 30, 0.5, 2}
	b := []int64{3, 1, 9, 2, 7, 3, 7, 4}
	want := direct(t, modelzoo.MultiInput,
		onnx.Tensor{Name: "a", Type: onnx.FP32, Shape: []int64{4, 3}, Data: a},
		onnx.Tensor{Name: "b", Type: onnx.Int64, Shape: []int64{4, 2}, Data: b})
	for _, w := range want {
		wantJSON := nestedJSON(t, w.Data, w.Shape)
		if !sameJSON(t, got.Outputs[w.Name], wantJSON) {
			t.Errorf("output %s = %s, want %s", w.Name, got.Outputs[w.Name], wantJSON)
		}
	}
	if got.RequestID != "req-1" || got.Model["name"] != "scorer" || got.Model["version"] != float64(1) || got.Model["uuid"] == "" {
		t.Errorf("request_id %q model %v", got.RequestID, got.Model)
	}
	wantStatus := []map[string]string{
		{"user:age": "PRESENT", "user:income": "PRESENT", "user:visits": "PRESENT"},
		{"user:age": "PRESENT", "user:income": "NOT_FOUND", "user:visits": "PRESENT"},
		{"user:age": "STALE", "user:income": "STALE", "user:visits": "STALE"},
		{"user:age": "NOT_FOUND", "user:income": "NOT_FOUND", "user:visits": "NOT_FOUND"},
	}
	if !reflect.DeepEqual(got.Status, wantStatus) {
		t.Errorf("feature_status = %v\nwant %v", got.Status, wantStatus)
	}

	// Without debug there is no feature_status, and a request_id is made up.
	r = g.must("POST", "/v1/models/scorer@champion/predict", `{"entities": {"user_id": ["u1"]}, "request": {"hour": [1], "count": [1]}}`, 404)
	g.setAlias("scorer", "champion", 1)
	r = g.must("POST", "/v1/models/scorer@champion/predict", `{"entities": {"user_id": ["u1"]}, "request": {"hour": [1], "count": [1]}}`, 200)
	var plain map[string]json.RawMessage
	r.decode(t, &plain)
	if _, ok := plain["feature_status"]; ok || len(plain["request_id"]) < 10 {
		t.Errorf("plain answer %s", r.body)
	}
	g.must("POST", "/v1/models/scorer/1/predict", `{"entities": {"user_id": [42]}, "request": {"hour": [1], "count": [1]}}`, 200)
}

func TestPredictErrors(t *testing.T) {
	g := startGateway(t)
	g.must("PUT", "/v1/feature-views/user", userView, 201)
	if r := g.registerWith("scorer", modelzoo.MultiInput, multiSpec); r.status != 201 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	g.register("linear", modelzoo.Linear)
	tests := []struct {
		path, body string
		status     int
		want       string
	}{
		{"/v1/models/scorer/predict", `{"entities": {"user_id": ["u1"]}, "request": {"hour": [1]}}`, 400, "request.count: missing"},
		{"/v1/models/scorer/predict", `{"entities": {"user_id": ["u1", "u2"]}, "request": {"hour": [1], "count": [1]}}`, 400, "request.hour: 1 values for 2 entity rows"},
		{"/v1/models/scorer/predict", `{"entities": {"user": ["u1"]}, "request": {"hour": [1], "count": [1]}}`, 400, `column \"user_id\" is missing`},
		{"/v1/models/scorer/predict", `{"entities": {"user_id": [true]}, "request": {"hour": [1], "count": [1]}}`, 400, "entities.user_id[0]: true is not a string or a number"},
		{"/v1/models/scorer/predict", `{"entities": {"user_id": ["u1"]}, "request": {"hour": ["x"], "count": [1]}}`, 400, `request.hour[0]: \"x\" is not a number`},
		{"/v1/models/scorer/predict", `{"entities": {"user_id": ["u1"]}, "request": {"hour": [1], "count": [1.5]}}`, 400, "request.count[0]: 1.5 is not a whole number"},
		{"/v1/models/scorer/predict", `{"entities": {"user_id": ["u1"]}, "request": {"hour": [1], "count": [1], "extra": [1]}}`, 400, "request.extra: the model's feature spec does not use it"},
		{"/v1/models/scorer/predict", `{"inputs": {"a": [[1,2,3]]}}`, 400, "reads its inputs from features"},
		{"/v1/models/scorer/predict", `{"entities": {"user_id": []}, "request": {"hour": [], "count": []}}`, 400, "want 1 to 10000 rows"},
		{"/v1/models/linear/predict", `{"entities": {"user_id": ["u1"]}}`, 400, "has no feature spec"},
		{"/v1/models/linear/predict", `{"inputs": {"x": [[1,2,3]]}}`, 400, "inputs.x: shape [1,3] does not fit the model's [-1,4]"},
		{"/v1/models/linear/predict", `{"inputs": {"x": [[1,2,3,4],[5,6]]}}`, 400, "not rectangular"},
		{"/v1/models/linear/predict", `{"inputs": {"z": [[1,2,3,4]]}}`, 400, "inputs.z: model linear has no such input"},
		{"/v1/models/linear/predict", `{"inputs": {}}`, 400, "inputs: required"},
		{"/v1/models/linear/predict", `{"inputs": {"x": [[1,2,3,4]]}, "extra": 1}`, 400, `unknown field \"extra\"`},
		{"/v1/models/linear@/predict", `{"inputs": {"x": [[1,2,3,4]]}}`, 400, "write name, name@alias or name/version"},
		{"/v1/models/linear/champion/predict", `{"inputs": {"x": [[1,2,3,4]]}}`, 400, "must be a version number"},
		{"/v1/models/nope/predict", `{"inputs": {"x": [[1,2,3,4]]}}`, 404, `model \"nope\" not found`},
	}
	for _, tt := range tests {
		r := g.do("POST", tt.path, "application/json", []byte(tt.body))
		if r.status != tt.status || !strings.Contains(string(r.body), tt.want) {
			t.Errorf("POST %s %s: %d %s, want %d containing %s", tt.path, tt.body, r.status, r.body, tt.status, tt.want)
		}
	}
}

func TestPredictRawInputs(t *testing.T) {
	g := startGateway(t)
	g.register("linear", modelzoo.Linear)
	r := g.must("POST", "/v1/models/linear/predict", `{"inputs": {"x": [[0, 1, 2, 3], [4, 5, 6, 7]]}}`, 200)
	var got struct {
		Outputs map[string]json.RawMessage `json:"outputs"`
	}
	r.decode(t, &got)
	if string(got.Outputs["y"]) != "[[1.5,7.5],[11.5,17.5]]" {
		t.Errorf("y = %s", got.Outputs["y"])
	}
}

func TestSpecChecksAtRegistration(t *testing.T) {
	g := startGateway(t)
	g.must("PUT", "/v1/feature-views/user", userView, 201)
	spec := func(s string) string { return `{"feature_spec": ` + s + `}` }
	tests := []struct {
		metadata, want string
	}{
		{spec(`{"entities": ["user_id"], "inputs": {"a": ["user:age", "user:agee", "request:h"], "b": ["user:visits", "request:c"]}}`), `view user has no feature \"agee\"`},
		{spec(`{"entities": ["user_id"], "inputs": {"a": ["user:age", "request:h"], "b": ["user:visits", "request:c"]}}`), "feature_spec.inputs.a: 2 features listed, but the input is 3 wide"},
		{spec(`{"entities": ["user_id"], "inputs": {"a": ["user:age", "user:city", "request:h"], "b": ["user:visits", "request:c"]}}`), "a string feature cannot fill a FP32 input"},
		{spec(`{"entities": ["user_id"], "inputs": {"a": ["user:age", "user:income", "request:h"], "b": ["user:age", "request:c"]}}`), "a float feature cannot fill a INT64 input"},
		{spec(`{"entities": ["account"], "inputs": {"a": ["user:age", "user:income", "request:h"], "b": ["user:visits", "request:c"]}}`), "keyed by user_id, which feature_spec.entities does not list"},
		{spec(`{"entities": ["user_id"], "inputs": {"a": ["user:age", "user:income", "request:h"]}}`), `model input \"b\" is not filled`},
		{spec(`{"entities": ["user_id"], "inputs": {"a": ["user:age", "user:income", "request:h"], "b": ["user:visits", "request:c"], "zz": ["user:age"]}}`), `the model has no input \"zz\"`},
		{spec(`{"entities": ["user_id"], "inputs": {"a": ["user:age", "user:income", "request:h"], "b": ["user:visits", "request:c"]}, "defaults": {"user:age": "old"}}`), `feature_spec.defaults.user:age: \"old\" is not a float`},
		{spec(`{"entities": ["user_id"], "inputs": {"a": ["user:age", "user:income", "request:h"], "b": ["user:visits", "request:c"]}, "defaults": {"user:city": "x"}}`), "is not a feature any input uses"},
		{spec(`{"entities": ["user_id"], "inputs": {"a": ["other:age", "user:income", "request:h"], "b": ["user:visits", "request:c"]}}`), `no feature view \"other\"`},
		{spec(`{"entitys": ["user_id"]}`), `unknown field \"entitys\"`},
	}
	before := g.state()
	for _, tt := range tests {
		r := g.registerWith("scorer", modelzoo.MultiInput, tt.metadata)
		if r.status != 400 || !strings.Contains(string(r.body), tt.want) {
			t.Errorf("%s: %d %s, want 400 containing %s", tt.metadata, r.status, r.body, tt.want)
		}
	}
	if after := g.state(); after.models != before.models || len(after.files) != len(before.files) {
		t.Errorf("refused registrations changed the registry: %+v", after)
	}
}

func TestViewChangesMustNotBreakModels(t *testing.T) {
	g := startGateway(t)
	g.must("PUT", "/v1/feature-views/user", userView, 201)
	if r := g.registerWith("scorer", modelzoo.MultiInput, multiSpec); r.status != 201 {
		t.Fatalf("register: %d %s", r.status, r.body)
	}
	// Adding a feature and changing the TTL is fine.
	g.must("PUT", "/v1/feature-views/user", strings.Replace(userView, `"ttl": "24h"`, `"ttl": "1h", "cache_ttl": "5s"`, 1), 200)
	grown := strings.Replace(userView, `{"name": "city", "type": "string"}`, `{"name": "city", "type": "string"}, {"name": "score", "type": "double"}`, 1)
	g.must("PUT", "/v1/feature-views/user", grown, 200)
	tests := []struct {
		method, body string
		status       int
		want         string
	}{
		{"PUT", strings.Replace(userView, `{"name": "income", "type": "double"},`, "", 1), 409, "changing feature view user would break model scorer version 1"},
		{"PUT", strings.Replace(userView, `{"name": "age", "type": "float"}`, `{"name": "age", "type": "double"}`, 1), 409, "feature age cannot change type"},
		{"PUT", strings.Replace(userView, `["user_id"]`, `["user_id", "day"]`, 1), 409, "entities cannot change"},
		{"PUT", strings.Replace(userView, `"ttl": "24h"`, `"ttl": "24h", "store": "redis"`, 1), 400, `store \"redis\" is not configured`},
		{"PUT", strings.Replace(userView, `"ttl": "24h"`, `"ttl": "soon"`, 1), 400, `invalid duration \"soon\"`},
		{"PUT", strings.Replace(userView, `"ttl": "24h"`, `"ttl": "-1h"`, 1), 400, `ttl: must not be negative, got -1h0m0s`},
		{"PUT", strings.Replace(userView, `"ttl": "24h"`, `"ttl": "24h", "cache_ttl": "-5s"`, 1), 400, `cache_ttl: must not be negative, got -5s`},
		{"PUT", `{"entities": ["user_id"], "features": [{"name": "Age", "type": "float"}]}`, 400, "use lower-case letters"},
		{"PUT", `{"entities": ["user_id"], "features": [{"name": "age", "type": "decimal"}]}`, 400, `\"decimal\" is not one of`},
		{"DELETE", "", 409, "deleting feature view user would break model scorer version 1"},
	}
	for _, tt := range tests {
		r := g.do(tt.method, "/v1/feature-views/user", "application/json", []byte(tt.body))
		if r.status != tt.status || !strings.Contains(string(r.body), tt.want) {
			t.Errorf("%s %s: %d %s, want %d containing %s", tt.method, tt.body, r.status, r.body, tt.status, tt.want)
		}
	}
	g.must("GET", "/v1/feature-views/user", "", 200)
	g.must("DELETE", "/v1/models/scorer/versions/1", "", 204)
	g.must("DELETE", "/v1/feature-views/user", "", 204)
	g.must("GET", "/v1/feature-views/user", "", 404)
}

func TestOnlineReadsAndWrites(t *testing.T) {
	g := startGateway(t)
	g.must("PUT", "/v1/feature-views/user", strings.Replace(userView, `"ttl": "24h"`, `"ttl": "24h", "cache_ttl": "1m"`, 1), 201)
	g.must("PUT", "/v1/feature-views/txn", `{"entities": ["user_id", "merchant"], "features": [{"name": "amount", "type": "double"}, {"name": "emb", "type": "float_list"}, {"name": "fraud", "type": "bool"}]}`, 201)
	g.must("POST", "/v1/feature-views/user/rows", `{"rows": [{"user_id": "u1", "age": 31.5, "city": "Oslo", "event_ts": "2026-11-19T10:00:00Z"}]}`, 200)
	g.must("POST", "/v1/feature-views/txn/rows", `{"rows": [{"user_id": "u1", "merchant": 77, "amount": 12.5, "emb": [1, 2.5], "fraud": true}]}`, 200)

	read := func() onlineAnswer {
		t.Helper()
		r := g.must("POST", "/v1/features/online", `{"features": ["user:age", "user:city", "user:income", "txn:emb", "txn:fraud"],
			"entities": {"user_id": ["u1", "u2"], "merchant": ["77", "77"]}}`, 200)
		var a onlineAnswer
		r.decode(t, &a)
		return a
	}
	a := read()
	row := a.Rows[0]
	if fmt.Sprint(row.Values) != "[31.5 Oslo <nil> [1 2.5] true]" || fmt.Sprint(row.Statuses) != "[STALE STALE NOT_FOUND PRESENT PRESENT]" {
		t.Errorf("u1: %+v", row)
	}
	if row.EventTimestamps[0] == nil || !row.EventTimestamps[0].Equal(time.Date(2026, 11, 19, 10, 0, 0, 0, time.UTC)) || row.EventTimestamps[2] != nil {
		t.Errorf("u1 event timestamps %v", row.EventTimestamps)
	}
	if fmt.Sprint(a.Rows[1].Statuses) != "[NOT_FOUND NOT_FOUND NOT_FOUND NOT_FOUND NOT_FOUND]" || a.Rows[1].Entities["user_id"] != "u2" {
		t.Errorf("u2: %+v", a.Rows[1])
	}

	// An older row does not overwrite; a newer one does, and the cache in
	// front of the store does not hide it.
	g.must("POST", "/v1/feature-views/user/rows", `{"rows": [{"user_id": "u1", "age": 1, "event_ts": "2026-11-18T10:00:00Z"}]}`, 200)
	if a := read(); a.Rows[0].Values[0] != 31.5 {
		t.Errorf("older row overwrote: %v", a.Rows[0].Values)
	}
	fresh := time.Now().UTC().Format(time.RFC3339Nano)
	g.must("POST", "/v1/feature-views/user/rows", `{"rows": [{"user_id": "u1", "age": 33, "event_ts": "`+fresh+`"}]}`, 200)
	if a := read(); a.Rows[0].Values[0] != float64(33) || a.Rows[0].Statuses[0] != "PRESENT" || a.Rows[0].Values[1] != nil {
		t.Errorf("newer row not read back whole: %+v", a.Rows[0])
	}

	bad := []struct{ path, body, want string }{
		{"/v1/feature-views/user/rows", `{"rows": [{"user_id": "u9", "age": 1}, {"user_id": "u9", "age": "old"}]}`, `rows[1].age: \"old\" is not a float`},
		{"/v1/feature-views/user/rows", `{"rows": [{"age": 1}]}`, "rows[0].user_id: missing"},
		{"/v1/feature-views/user/rows", `{"rows": [{"user_id": "u9", "height": 1}]}`, `rows[0].height: view user has no such column`},
		{"/v1/feature-views/user/rows", `{"rows": [{"user_id": "u9", "visits": 2.5}]}`, "rows[0].visits: 2.5 is not an int"},
		{"/v1/feature-views/user/rows", `{"rows": [{"user_id": "u9", "event_ts": "yesterday"}]}`, "rows[0].event_ts"},
		{"/v1/feature-views/user/rows", `{"rows": []}`, "at least one row is required"},
		{"/v1/feature-views/txn/rows", `{"rows": [{"user_id": "u9", "merchant": "m", "emb": [1, "x"]}]}`, "rows[0].emb: element 1"},
		{"/v1/features/online", `{"features": ["user:agee"], "entities": {"user_id": ["u1"]}}`, `view user has no feature \"agee\"`},
		{"/v1/features/online", `{"features": ["user:age"], "entities": {"user_id": ["u1"], "x": ["1"]}}`, `column \"x\" is not an entity`},
		{"/v1/features/online", `{"features": ["txn:emb"], "entities": {"user_id": ["u1"]}}`, `column \"merchant\" is missing`},
		{"/v1/features/online", `{"features": [], "entities": {"user_id": ["u1"]}}`, "features: want 1 to 1024"},
		{"/v1/features/online", `{"features": [` + strings.Repeat(`"user:age", `, 1024) + `"user:age"], "entities": {"user_id": ["u1"]}}`,
			`features: want 1 to 1024 \"view:feature\" references, got 1025`},
	}
	for _, b := range bad {
		r := g.do("POST", b.path, "application/json", []byte(b.body))
		if r.status != 400 || !strings.Contains(string(r.body), b.want) {
			t.Errorf("POST %s %s: %d %s, want 400 containing %s", b.path, b.body, r.status, r.body, b.want)
		}
	}
	// The refused batch stored nothing, not even its valid first row.
	r := g.must("POST", "/v1/features/online", `{"features": ["user:age"], "entities": {"user_id": ["u9"]}}`, 200)
	if !strings.Contains(string(r.body), "NOT_FOUND") {
		t.Errorf("a refused batch stored a row: %s", r.body)
	}
}

type onlineAnswer struct {
	Features []string `json:"features"`
	Rows     []struct {
		Entities        map[string]string `json:"entities"`
		Values          []any             `json:"values"`
		Statuses        []string          `json:"statuses"`
		EventTimestamps []*time.Time      `json:"event_timestamps"`
	} `json:"rows"`
}

// TestOnlineReadBounds checks that an online read's answer, rows × features
// values, is held to limits.max_tensor_elements before anything is read.
func TestOnlineReadBounds(t *testing.T) {
	g := startGateway(t, withConfig(func(c *config.Config) { c.Limits.MaxTensorElements = 4 }))
	g.must("PUT", "/v1/feature-views/user", userView, 201)
	tests := []struct {
		features string
		users    string
		status   int
		want     string
	}{
		{`"user:age", "user:city"`, `"u1", "u2"`, 200, `"statuses"`},
		{`"user:age", "user:city", "user:visits"`, `"u1", "u2"`, 413,
			"features × entities: 3 features for 2 rows is 6 values, more than limits.max_tensor_elements (4)"},
	}
	for _, tt := range tests {
		r := g.do("POST", "/v1/features/online", "application/json",
			[]byte(`{"features": [`+tt.features+`], "entities": {"user_id": [`+tt.users+`]}}`))
		if r.status != tt.status || !strings.Contains(string(r.body), tt.want) {
			t.Errorf("features %s for %s: %d %s, want %d containing %s", tt.features, tt.users, r.status, r.body, tt.status, tt.want)
		}
	}
}
