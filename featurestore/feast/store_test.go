package feast

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/internal/testservers"
)

// golden is testdata/encoding.golden.json: what Feast 0.67.0 wrote for some
// keys, fields and values (feast_repo.py keys).
type golden struct {
	Keys []struct {
		Entities, Types, Values []string
		Hex                     string
	}
	Fields map[string]string
	Values []struct {
		Type featurestore.Type
		Want any
		Hex  string
	}
	Timestamp struct {
		UnixNanos int64 `json:"unix_nanos"`
		Hex       string
	}
}

func readGolden(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile("testdata/encoding.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestEncodingAsFeastWritesIt(t *testing.T) {
	var g golden
	if err := json.Unmarshal(readGolden(t), &g); err != nil {
		t.Fatal(err)
	}
	for _, k := range g.Keys {
		v := &featurestore.View{Name: "v", Entities: k.Entities}
		got, err := newKeyEncoder(v, k.Types, "proj").append(nil, featurestore.Key(k.Values))
		if err != nil {
			t.Fatal(err)
		}
		if want := k.Hex + hex.EncodeToString([]byte("proj")); hex.EncodeToString(got) != want {
			t.Errorf("key %v %v: got %x, want %s", k.Entities, k.Values, got, want)
		}
	}
	for s, want := range g.Fields {
		view, feature, _ := bytes.Cut([]byte(s), []byte(":"))
		if got := hex.EncodeToString([]byte(fieldName(string(view), string(feature)))); got != want {
			t.Errorf("field of %q: got %s, want %s", s, got, want)
		}
	}
	for _, c := range g.Values {
		b, _ := hex.DecodeString(c.Hex)
		v, err := decodeValue(c.Type, b)
		if err != nil {
			t.Errorf("%s %s: %v", c.Type, c.Hex, err)
			continue
		}
		if got, want := fmt.Sprint(plain(v)), fmt.Sprint(c.Want); got != want {
			t.Errorf("%s %s: got %s, want %s", c.Type, c.Hex, got, want)
		}
	}
	b, _ := hex.DecodeString(g.Timestamp.Hex)
	ts, err := decodeTimestamp(b)
	if err != nil || ts.UnixNano() != g.Timestamp.UnixNanos {
		t.Errorf("timestamp: %v %v, want %d", ts.UnixNano(), err, g.Timestamp.UnixNanos)
	}
}

// TestGoldenIsFeasts has the installed Feast write the golden file again.
func TestGoldenIsFeasts(t *testing.T) {
	py := testservers.FeastPython(t)
	out, err := exec.Command(py, "testdata/feast_repo.py", "keys").Output()
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	json.Unmarshal(out, &a)
	json.Unmarshal(readGolden(t), &b)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("Feast now writes\n%s\nnot testdata/encoding.golden.json", out)
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, c := range []struct {
		t   featurestore.Type
		hex string
	}{
		{featurestore.Int, "1202c3b8"},         // a string
		{featurestore.String, "202a"},          // an int64
		{featurestore.FloatList, "350000803e"}, // a float
		{featurestore.Float, "7a020a00"},       // a double_list_val
		{featurestore.Int, "20"},               // truncated
	} {
		b, _ := hex.DecodeString(c.hex)
		if v, err := decodeValue(c.t, b); err == nil {
			t.Errorf("%s %s: decoded %+v", c.t, c.hex, v)
		}
	}
	_, err := newKeyEncoder(&featurestore.View{Name: "v", Entities: []string{"id"}}, []string{"int64"}, "p").append(nil, "x1")
	if !errors.Is(err, featurestore.ErrInvalid) {
		t.Errorf("non-integer key of an int64 entity: %v", err)
	}
}

// plain gives a decoded value as JSON would.
func plain(v featurestore.Value) any {
	switch v.Type {
	case "":
		return nil
	case featurestore.Int:
		return v.Int
	case featurestore.Bool:
		return v.Int == 1
	case featurestore.String:
		return v.Str
	case featurestore.FloatList:
		return v.List
	}
	return v.Num
}

var driverStats = &featurestore.View{
	Name: "driver_stats", Entities: []string{"driver_id"}, Store: StoreName,
	TTL:   featurestore.Duration(10 * 24 * time.Hour),
	Feast: &featurestore.FeastSource{EntityTypes: []string{"int64"}},
	Features: []featurestore.Feature{
		{Name: "trips", Type: featurestore.Int}, {Name: "rating", Type: featurestore.Float},
		{Name: "score", Type: featurestore.Double}, {Name: "name", Type: featurestore.String},
		{Name: "active", Type: featurestore.Bool}, {Name: "embedding", Type: featurestore.FloatList},
	},
}

// TestReadWhatFeastWrote has Feast materialize 40 drivers and reads them,
// and one Feast never wrote, with Store.Read; every value equals Feast's
// get_online_features.
func TestReadWhatFeastWrote(t *testing.T) {
	readWhatFeastWrote(t, testservers.NewFeastRepo(t, "testdata/feast_repo.py", 40), 40)
}

// TestReadWhatFeastWroteOnACluster is TestReadWhatFeastWrote on a Redis
// Cluster, which Feast writes to as its redis_type redis_cluster.
func TestReadWhatFeastWroteOnACluster(t *testing.T) {
	addrs := testservers.RedisCluster(t)
	readWhatFeastWrote(t, testservers.NewFeastRepoOn(t, "testdata/feast_repo.py", 40, addrs), 40)
}

func readWhatFeastWrote(t *testing.T, repo *testservers.FeastRepo, n int64) {
	ctx := context.Background()
	s, err := New(ctx, Options{Addrs: repo.RedisAddrs})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	v := *driverStats
	v.Feast = &featurestore.FeastSource{Project: repo.Project, EntityTypes: []string{"int64"}}
	if err := v.Check(); err != nil {
		t.Fatal(err)
	}
	if err := s.Prepare(ctx, &v); err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, 0, n+1)
	keys := make([]string, 0, n+1)
	for i := int64(1); i <= n+1; i++ {
		ids = append(ids, i)
		keys = append(keys, fmt.Sprint(i))
	}
	l := featurestore.Lookup{View: &v, Keys: keys, Features: []int{0, 1, 2, 3, 4, 5}, Rows: make([]featurestore.Row, len(keys))}
	if err := s.Read(ctx, []featurestore.Lookup{l}); err != nil {
		t.Fatal(err)
	}
	feast := repo.Online(t, ids)
	for i, row := range l.Rows {
		if wantFound := ids[i] <= n; row.Found != wantFound {
			t.Errorf("driver %d: found %v", ids[i], row.Found)
		}
		for j, f := range v.Features {
			got, want := plain(row.Values[j]), feast.Features[f.Name].Values[i]
			if !testservers.SameAsFeast(string(f.Type), got, want) {
				t.Errorf("driver %d %s: mlgate %v, Feast %v", ids[i], f.Name, got, want)
			}
		}
	}
	if age := time.Since(l.Rows[0].EventTS); age < 29*24*time.Hour || !v.Stale(l.Rows[0].EventTS, time.Now()) {
		t.Errorf("driver 1's event time %v is not Feast's 30 days ago", l.Rows[0].EventTS)
	}

	// A feature whose type is not Feast's is the view's mistake, not the
	// store's: ErrInvalid, without the store's address.
	wrong := v
	wrong.Features = slices.Clone(v.Features)
	wrong.Features[0].Type = featurestore.String
	l = featurestore.Lookup{View: &wrong, Keys: []string{"3"}, Features: []int{0}, Rows: make([]featurestore.Row, 1)}
	err = s.Read(ctx, []featurestore.Lookup{l})
	if !errors.Is(err, featurestore.ErrInvalid) || !strings.Contains(err.Error(), "view driver_stats (Feast project "+repo.Project+"): feature trips: Feast stored the value as int64_val, which a feature of type string cannot hold") || strings.Contains(err.Error(), repo.Redis) {
		t.Errorf("a feature of the wrong type: %v", err)
	}

	err = s.Write(ctx, &v, []featurestore.Row{{Key: "1"}})
	if !errors.Is(err, featurestore.ErrInvalid) || !bytes.Contains([]byte(err.Error()), []byte("Feast writes it")) {
		t.Errorf("write: %v", err)
	}
	v.Feast = nil
	if err := v.Check(); !errors.Is(err, featurestore.ErrInvalid) {
		t.Errorf("a feast-redis view without feast: %v", err)
	}
}

// TestImportRegistry reads testdata/registry.db, the registry Feast 0.67.0
// wrote when it applied feast_repo.py's repository under project tryproj.
func TestImportRegistry(t *testing.T) {
	data, err := os.ReadFile("testdata/registry.db")
	if err != nil {
		t.Fatal(err)
	}
	imps, leftOut, err := ImportRegistry(data, "tryproj")
	if err != nil || len(imps) != 1 || len(leftOut) != 0 {
		t.Fatalf("%d views, left out %q, %v", len(imps), leftOut, err)
	}
	v := imps[0].View
	want := *driverStats
	want.TTL = featurestore.Duration(7 * 24 * time.Hour)
	want.Feast = &featurestore.FeastSource{Project: "tryproj", EntityTypes: []string{"int64"}}
	got, _ := json.Marshal(v)
	wantJSON, _ := json.Marshal(&want)
	if string(got) != string(wantJSON) || len(imps[0].Skipped) != 0 {
		t.Errorf("imported %s, skipped %v; want %s", got, imps[0].Skipped, wantJSON)
	}
	if _, _, err := ImportRegistry(data, "other"); !errors.Is(err, featurestore.ErrInvalid) {
		t.Errorf("a project the registry does not hold: %v", err)
	}
}

// TestImportRegistryLeavesOut reads testdata/registry_mixed.db, which Feast
// 0.67.0 wrote for project mixed: driver_stats (an entity without a value
// type, whose join key Feast inferred as int64; features of type
// UnixTimestamp and Array(String), which mlgate has no type for), an
// entityless global_stats, and DriverCamel, a name mlgate does not allow.
func TestImportRegistryLeavesOut(t *testing.T) {
	data, err := os.ReadFile("testdata/registry_mixed.db")
	if err != nil {
		t.Fatal(err)
	}
	imps, leftOut, err := ImportRegistry(data, "mixed")
	if err != nil || len(imps) != 1 {
		t.Fatalf("%d views, %v", len(imps), err)
	}
	got, _ := json.Marshal(imps[0].View)
	if want := `{"name":"driver_stats","entities":["driver_id"],"features":[{"name":"trips","type":"int"},{"name":"rating","type":"float"}],` +
		`"ttl":"2h0m0s","store":"feast-redis","feast":{"project":"mixed","entity_types":["int64"]},"cache_ttl":"0s",` +
		`"created_at":"0001-01-01T00:00:00Z","updated_at":"0001-01-01T00:00:00Z"}`; string(got) != want {
		t.Errorf("imported\n%s\nwant\n%s", got, want)
	}
	if got, want := fmt.Sprint(imps[0].Skipped), "[seen (Feast value type 8 has no mlgate feature type) tags (Feast value type 12 has no mlgate feature type)]"; got != want {
		t.Errorf("skipped %s, want %s", got, want)
	}
	if len(leftOut) != 2 || !strings.Contains(leftOut[0], "feast view global_stats: it has no entities") ||
		!strings.Contains(leftOut[1], `feast view DriverCamel: view name "DriverCamel": use lower-case letters`) {
		t.Errorf("left out %q", leftOut)
	}
}

// FuzzImportRegistry feeds mangled registries to the decoder: it returns
// views or an error, and never panics.
func FuzzImportRegistry(f *testing.F) {
	data, err := os.ReadFile("testdata/registry.db")
	if err != nil {
		f.Fatal(err)
	}
	mixed, err := os.ReadFile("testdata/registry_mixed.db")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add(data[:len(data)/2])
	f.Add(mixed)
	f.Add([]byte{0x32, 0x05, 0x0a, 0x03, 0x0a, 0x01, 0x78})
	f.Fuzz(func(t *testing.T, b []byte) {
		imps, _, err := ImportRegistry(b, "tryproj")
		if err == nil {
			for _, imp := range imps {
				if err := imp.View.Check(); err != nil {
					t.Errorf("imported a view that does not check: %v", err)
				}
			}
		}
	})
}

// FuzzDecodeValue feeds mangled feast.types.Values to the decoder of every
// feature type.
func FuzzDecodeValue(f *testing.F) {
	var g golden
	if err := json.Unmarshal(readGoldenF(f), &g); err != nil {
		f.Fatal(err)
	}
	for _, c := range g.Values {
		b, _ := hex.DecodeString(c.Hex)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, typ := range featurestore.Types {
			v, err := decodeValue(typ, b)
			if err == nil && v.Present() && v.Type != typ {
				t.Errorf("decoded a %s as %s", v.Type, typ)
			}
		}
		decodeTimestamp(b)
	})
}

func readGoldenF(f *testing.F) []byte {
	raw, err := os.ReadFile("testdata/encoding.golden.json")
	if err != nil {
		f.Fatal(err)
	}
	return raw
}
