package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"os"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/testservers"
	"github.com/mlgate/mlgate/serving/onnx"
)

// feastDrivers is how many drivers Feast materializes for TestFeastOnlineStore.
const feastDrivers = 1000

// driverStatsView is Feast's driver_stats (feast_repo.py) as a view of store
// feast-redis, with a TTL of 10 days: driver 1, written 30 days ago, is stale.
func driverStatsView(project string) string {
	return `{"entities": ["driver_id"], "ttl": "240h", "store": "feast-redis",
		"feast": {"project": "` + project + `", "entity_types": ["int64"]},
		"features": [{"name": "trips", "type": "int"}, {"name": "rating", "type": "float"}, {"name": "score", "type": "double"},
			{"name": "name", "type": "string"}, {"name": "active", "type": "bool"}, {"name": "embedding", "type": "float_list"}]}`
}

// TestFeastOnlineStore has Feast 0.67 (PyPI's feast[redis]) materialize
// 1,000 drivers into the test Redis, and compares, for each of them and one
// Feast never wrote, what mlgate's /v1/features/online answers with what
// Feast's own get_online_features answers. Values are equal; statuses
// differ where Feast's do not say what mlgate's say:
//
//   - a value Feast holds and mlgate finds within the view's TTL: Feast
//     PRESENT, mlgate PRESENT;
//   - one older than mlgate's TTL (driver 1): Feast PRESENT (it applies no
//     TTL online), mlgate STALE, with the value;
//   - a null (driver 2's name) or an entity Feast never wrote (driver 1001):
//     Feast PRESENT with a null value, mlgate NOT_FOUND.
//
// A prediction whose feature spec reads the view equals ONNX Runtime run on
// Feast's values, and writes to the view are refused naming Feast.
func TestFeastOnlineStore(t *testing.T) {
	repo := testservers.NewFeastRepo(t, "../../featurestore/feast/testdata/feast_repo.py", feastDrivers)
	cfg := testConfig(t.TempDir())
	cfg.OnlineStore.Redis.Addr = repo.Redis
	g, err := Start(t.Context(), cfg, "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(t.Context())
	call(t, g, "PUT", "/v1/feature-views/driver_stats", "application/json", strings.NewReader(driverStatsView(repo.Project)))

	ids := make([]int64, 0, feastDrivers+1)
	keys := make([]string, 0, feastDrivers+1)
	for i := int64(1); i <= feastDrivers+1; i++ {
		ids = append(ids, i)
		keys = append(keys, fmt.Sprint(i))
	}
	features := []string{"trips", "rating", "score", "name", "active", "embedding"}
	types := []featurestore.Type{featurestore.Int, featurestore.Float, featurestore.Double, featurestore.String, featurestore.Bool, featurestore.FloatList}
	refs, _ := json.Marshal(prefixed("driver_stats:", features))
	entities, _ := json.Marshal(keys)
	var got struct {
		Rows []struct {
			Values   []any    `json:"values"`
			Statuses []string `json:"statuses"`
		} `json:"rows"`
	}
	raw := call(t, g, "POST", "/v1/features/online", "application/json",
		strings.NewReader(`{"features": `+string(refs)+`, "entities": {"driver_id": `+string(entities)+`}}`))
	if err := json.Unmarshal([]byte(raw), &got); err != nil || len(got.Rows) != len(ids) {
		t.Fatalf("online read: %v, %d rows", err, len(got.Rows))
	}
	want := repo.Online(t, ids)

	compared := 0
	for i, id := range ids {
		for j, f := range features {
			fv := want.Features[f]
			mv, ms := got.Rows[i].Values[j], got.Rows[i].Statuses[j]
			if !testservers.SameAsFeast(string(types[j]), mv, fv.Values[i]) {
				t.Errorf("driver %d %s: mlgate %v, Feast %v", id, f, mv, fv.Values[i])
			}
			wantStatus := "PRESENT"
			switch {
			case fv.Values[i] == nil:
				wantStatus = "NOT_FOUND"
			case id == 1:
				wantStatus = "STALE"
			}
			if ms != wantStatus || fv.Statuses[i] != "PRESENT" {
				t.Errorf("driver %d %s: mlgate %s, Feast %s; want %s and PRESENT", id, f, ms, fv.Statuses[i], wantStatus)
			}
			compared++
		}
	}
	if compared != len(ids)*len(features) {
		t.Fatalf("compared %d values", compared)
	}
	if got.Rows[1].Statuses[3] != "NOT_FOUND" || got.Rows[feastDrivers].Statuses[0] != "NOT_FOUND" || got.Rows[0].Statuses[0] != "STALE" {
		t.Errorf("the null, missing and stale values: %v %v %v", got.Rows[1].Statuses, got.Rows[feastDrivers].Statuses, got.Rows[0].Statuses)
	}

	// Entity values may be JSON numbers, as Feast's int64 join keys are.
	r := post(t, g, "/v1/features/online", `{"features": ["driver_stats:trips"], "entities": {"driver_id": [3, 1001]}}`)
	if r.status != 200 || !strings.Contains(r.body, `"values":[-491],"statuses":["PRESENT"]`) || !strings.Contains(r.body, `"statuses":["NOT_FOUND"]`) {
		t.Errorf("numeric entity values: %d %s", r.status, r.body)
	}
	r = post(t, g, "/v1/features/online", `{"features": ["driver_stats:trips"], "entities": {"driver_id": ["three"]}}`)
	if r.status != 400 || !strings.Contains(r.body, "not an int64") {
		t.Errorf("a driver_id that is not an int64: %d %s", r.status, r.body)
	}

	r = post(t, g, "/v1/feature-views/driver_stats/rows", `{"rows": [{"driver_id": "5", "trips": 1}]}`)
	if r.status != 400 || !strings.Contains(r.body, "Feast writes it") {
		t.Errorf("write to a Feast view: %d %s", r.status, r.body)
	}

	t.Run("predict", func(t *testing.T) { predictOverFeast(t, g, want) })
}

func prefixed(prefix string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = prefix + n
	}
	return out
}

// predictOverFeast registers multi_input.onnx with a feature spec over
// driver_stats (a = rating, score, request x; b = trips, request n; defaults
// for the features) and checks its answer against ONNX Runtime run on the
// tensors built from Feast's get_online_features, or from the defaults for a
// driver Feast does not hold.
func predictOverFeast(t *testing.T, g *Gateway, feastAnswer *testservers.FeastAnswer) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("metadata", `{"feature_spec": {"entities": ["driver_id"],
		"inputs": {"a": ["driver_stats:rating", "driver_stats:score", "request:x"], "b": ["driver_stats:trips", "request:n"]},
		"defaults": {"driver_stats:rating": 0.5, "driver_stats:score": 2, "driver_stats:trips": 7}}}`)
	fw, _ := mw.CreateFormFile("model", "m.onnx")
	model, err := os.ReadFile(modelzoo.Path(modelzoo.MultiInput))
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(model)
	mw.Close()
	call(t, g, "POST", "/v1/models/drivers/versions", mw.FormDataContentType(), &body)

	// Drivers 3 to 10, which Feast holds, and 1001, which it does not: the
	// spec's defaults stand in for its values.
	drivers := []int{3, 4, 5, 6, 7, 8, 9, 10, feastDrivers + 1}
	var ids, xs, ns []string
	var a []float32
	var b []int64
	for _, id := range drivers {
		i := id - 1 // Feast's answer starts at driver 1
		ids = append(ids, fmt.Sprint(id))
		x, n := float32(id)/8, int64(100*id)
		xs, ns = append(xs, fmt.Sprint(x)), append(ns, fmt.Sprint(n))
		rating, score, trips := 0.5, 2.0, 7.0
		if feastAnswer.Features["trips"].Values[i] != nil {
			rating = feastAnswer.Features["rating"].Values[i].(float64)
			score = feastAnswer.Features["score"].Values[i].(float64)
			trips = feastAnswer.Features["trips"].Values[i].(float64)
		}
		a = append(a, float32(rating), float32(score), x)
		b = append(b, int64(trips), n)
	}
	rows := int64(len(drivers))
	s, err := onnx.Load(modelzoo.Path(modelzoo.MultiInput), onnx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	outs, err := s.Run([]onnx.Tensor{
		{Name: "a", Type: onnx.ParseDataType("FP32"), Shape: []int64{rows, 3}, Data: a},
		{Name: "b", Type: onnx.ParseDataType("INT64"), Shape: []int64{rows, 2}, Data: b},
	})
	if err != nil {
		t.Fatal(err)
	}

	raw := call(t, g, "POST", "/v1/models/drivers/predict", "application/json", strings.NewReader(
		`{"entities": {"driver_id": ["`+strings.Join(ids, `", "`)+`"]}, "request": {"x": [`+strings.Join(xs, ",")+`], "n": [`+strings.Join(ns, ",")+`]}}`))
	var out struct {
		Outputs map[string][][]float32 `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		t.Fatalf("predict: %v: %s", err, raw)
	}
	var got []float32
	for _, row := range out.Outputs["sum"] {
		got = append(got, row...)
	}
	if want := outs[0].Data.([]float32); fmt.Sprint(got) != fmt.Sprint(want) || len(got) != int(rows) {
		t.Errorf("predict over Feast's view: sum %v, ONNX Runtime on Feast's values %v", got, want)
	}
}
