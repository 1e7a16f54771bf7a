package serving

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	fs "github.com/mlgate/mlgate/featurestore"
)

// sampleAssembly is two entity rows of a feature of every type, and one
// feature that neither row has.
func sampleAssembly() *fs.Assembly {
	present, missing := fs.StatusPresent, fs.StatusNotFound
	return &fs.Assembly{
		Refs: []string{"user:age", "user:income", "user:visits", "user:vip", "user:city", "user:emb", "user:gone"},
		Used: [][]*fs.Value{
			{{Type: fs.Float, Num: 40.5}, {Type: fs.Float, Num: math.NaN()}},
			{{Type: fs.Double, Num: 0.1}, {Type: fs.Double, Num: 1e21}},
			{{Type: fs.Int, Int: -3}, {Type: fs.Int, Int: 7}},
			{{Type: fs.Bool, Int: 1}, {Type: fs.Bool}},
			{{Type: fs.String, Str: `Zürich "x"`}, {Type: fs.String}},
			{{Type: fs.FloatList, List: []float32{1, 2.5}}, {Type: fs.FloatList, List: []float32{}}},
			{{}, {}},
		},
		Statuses: [][]fs.Status{
			{present, present, present, present, present, present, missing},
			{fs.StatusStale, present, present, present, present, present, missing},
		},
	}
}

func TestFeaturesJSON(t *testing.T) {
	values, statuses := featuresJSON(sampleAssembly(), nil, nil)
	wantValues := `{"user:age":[40.5,null],"user:income":[0.1,1e+21],"user:visits":[-3,7],"user:vip":[true,false],` +
		`"user:city":["Zürich \"x\"",""],"user:emb":[[1,2.5],[]],"user:gone":[null,null]}`
	if values != wantValues {
		t.Errorf("values\n got %s\nwant %s", values, wantValues)
	}
	if want := `{"user:age":["PRESENT","STALE"],"user:income":["PRESENT","PRESENT"],"user:visits":["PRESENT","PRESENT"],` +
		`"user:vip":["PRESENT","PRESENT"],"user:city":["PRESENT","PRESENT"],"user:emb":["PRESENT","PRESENT"],"user:gone":["NOT_FOUND","NOT_FOUND"]}`; statuses != want {
		t.Errorf("statuses\n got %s\nwant %s", statuses, want)
	}
	for _, s := range []string{values, statuses} {
		if !json.Valid([]byte(s)) {
			t.Errorf("not JSON: %s", s)
		}
	}

	// A PII feature's values are replaced by keyed hashes, one per row.
	values, _ = featuresJSON(sampleAssembly(), []string{"user:city"}, []byte("k"))
	var got map[string][]any
	if err := json.Unmarshal([]byte(values), &got); err != nil {
		t.Fatal(err)
	}
	city := got["user:city"]
	if len(city) != 2 || !strings.HasPrefix(fmt.Sprint(city[0]), "pii:") || city[0] == city[1] || strings.Contains(values, "Zürich") {
		t.Errorf("user:city not hashed: %s", values)
	}
	if fmt.Sprint(got["user:visits"]) != "[-3 7]" {
		t.Errorf("user:visits changed by hashing another feature: %s", values)
	}
}

// BenchmarkFeaturesJSON is the inference-table encoding of a 100 entities ×
// 50 features prediction, done for every logged request.
func BenchmarkFeaturesJSON(b *testing.B) {
	const rows, features = 100, 50
	a := &fs.Assembly{Used: make([][]*fs.Value, features), Statuses: make([][]fs.Status, rows)}
	for f := range features {
		a.Refs = append(a.Refs, fmt.Sprintf("f50:f%d", f))
		a.Used[f] = make([]*fs.Value, rows)
		for r := range rows {
			a.Used[f][r] = &fs.Value{Type: fs.Float, Num: float64(float32(r*features+f) / 7)}
		}
	}
	for r := range rows {
		a.Statuses[r] = make([]fs.Status, features)
		for f := range features {
			a.Statuses[r][f] = fs.StatusPresent
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		featuresJSON(a, nil, nil)
	}
}
