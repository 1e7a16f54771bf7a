package redis

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/mlgate/mlgate/featurestore"
	"github.com/mlgate/mlgate/featurestore/storetest"
	"github.com/mlgate/mlgate/internal/testservers"
)

// testAddrs returns the server the tests use: TEST_REDIS_ADDR, one address
// for a standalone server or several, comma-separated, for a cluster.
func testAddrs(tb testing.TB) []string { return testservers.Redis(tb) }

// runPrefix makes this process's keys distinct from any other test run's on
// the same server.
var runPrefix = fmt.Sprintf("mlgatetest_%d_%d", os.Getpid(), rand.Uint32())

var storeCount atomic.Int64

// newStore opens a store on the test Redis (TEST_REDIS_ADDR) with a key
// prefix of its own and, when the test ends, removes every key under it and
// closes it.
func newStore(tb testing.TB) *Store {
	tb.Helper()
	return newStoreOn(tb, testAddrs(tb))
}

// newClusterStore is newStore on the test Redis Cluster
// (TEST_REDIS_CLUSTER_ADDRS).
func newClusterStore(tb testing.TB) *Store {
	tb.Helper()
	s := newStoreOn(tb, testservers.RedisCluster(tb))
	if s.cluster == nil {
		tb.Fatal("TEST_REDIS_CLUSTER_ADDRS gave a standalone server, not a cluster")
	}
	return s
}

func newStoreOn(tb testing.TB, addrs []string) *Store {
	tb.Helper()
	prefix := fmt.Sprintf("%s_%d", runPrefix, storeCount.Add(1))
	s, err := New(context.Background(), Options{Addrs: addrs, KeyPrefix: prefix})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx := context.Background()
		var err error
		if s.cluster != nil {
			err = s.cluster.ForEachMaster(ctx, func(ctx context.Context, node *goredis.Client) error {
				return s.unlinkMatching(ctx, node, prefix+":*")
			})
		} else {
			err = s.unlinkMatching(ctx, s.client, prefix+":*")
		}
		if err != nil {
			tb.Errorf("cleaning up %s:*: %v", prefix, err)
		}
		s.Close()
	})
	return s
}

func TestConformance(t *testing.T) {
	for _, tt := range []struct {
		name string
		open func(testing.TB) *Store
	}{
		{"standalone", newStore},
		{"cluster", newClusterStore},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.open(t)
			storetest.Run(t, func(t *testing.T) featurestore.OnlineStore { return s })
		})
	}
}

func testView(name string, nfeatures int) *featurestore.View {
	v := &featurestore.View{Name: name, Entities: []string{"user_id"}}
	types := featurestore.Types
	for i := range nfeatures {
		v.Features = append(v.Features, featurestore.Feature{Name: fmt.Sprintf("f%d", i), Type: types[i%len(types)]})
	}
	return v
}

// testRow returns a row of v with every value present, derived from n.
func testRow(v *featurestore.View, key string, ts time.Time, n int) featurestore.Row {
	r := featurestore.Row{Key: key, EventTS: ts, Values: make([]featurestore.Value, len(v.Features))}
	for i, f := range v.Features {
		x := n*100 + i
		val := featurestore.Value{Type: f.Type}
		switch f.Type {
		case featurestore.Float, featurestore.Double:
			val.Num = float64(x) + 0.5
		case featurestore.Int:
			val.Int = int64(-x)
		case featurestore.Bool:
			val.Int = int64(x % 2)
		case featurestore.String:
			val.Str = "s" + strconv.Itoa(x)
		case featurestore.FloatList:
			val.List = []float32{float32(x), 1.5, -2}
		}
		r.Values[i] = val
	}
	return r
}

func seq(n int) []int {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return idx
}

// counter counts the commands and pipelines that go-redis sends.
type counter struct {
	cmds, pipelines, pipelinedCmds atomic.Int64
}

func (c *counter) DialHook(next goredis.DialHook) goredis.DialHook { return next }

func (c *counter) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		c.cmds.Add(1)
		return next(ctx, cmd)
	}
}

func (c *counter) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		c.pipelines.Add(1)
		c.pipelinedCmds.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}

func (c *counter) reset() { c.cmds.Store(0); c.pipelines.Store(0); c.pipelinedCmds.Store(0) }

func TestReadIsOneRoundTrip(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	const nLookups, nKeys = 3, 7
	var lookups []featurestore.Lookup
	for i := range nLookups {
		v := testView(fmt.Sprintf("rt%d", i), 5+i)
		var rows []featurestore.Row
		var keys []string
		for k := range nKeys {
			key := fmt.Sprintf("e%d", k)
			keys = append(keys, key)
			if k%2 == 0 { // odd keys stay missing
				rows = append(rows, testRow(v, key, time.Unix(1700000000, int64(k)), k))
			}
		}
		if err := s.Write(ctx, v, rows); err != nil {
			t.Fatal(err)
		}
		lookups = append(lookups, featurestore.Lookup{View: v, Keys: keys, Features: []int{4, 0, 2}, Rows: make([]featurestore.Row, nKeys)})
	}

	var c counter
	s.client.AddHook(&c)
	if err := s.Read(ctx, lookups); err != nil {
		t.Fatal(err)
	}
	if got := c.pipelines.Load(); got != 1 {
		t.Errorf("Read of %d lookups × %d keys sent %d pipelines, want 1", nLookups, nKeys, got)
	}
	if got := c.pipelinedCmds.Load(); got != nLookups*nKeys {
		t.Errorf("the pipeline held %d commands, want %d", got, nLookups*nKeys)
	}
	if got := c.cmds.Load(); got != 0 {
		t.Errorf("Read sent %d commands outside the pipeline, want 0", got)
	}
	for i, l := range lookups {
		for k, r := range l.Rows {
			if r.Key != l.Keys[k] || r.Found != (k%2 == 0) || len(r.Values) != 3 {
				t.Fatalf("lookup %d row %d: %+v", i, k, r)
			}
			if !r.Found {
				if !reflect.DeepEqual(r.Values, make([]featurestore.Value, 3)) {
					t.Errorf("lookup %d row %d not found but has values %+v", i, k, r.Values)
				}
				continue
			}
			want := testRow(l.View, r.Key, time.Unix(1700000000, int64(k)), k)
			if !r.EventTS.Equal(want.EventTS) || !reflect.DeepEqual(r.Values, []featurestore.Value{want.Values[4], want.Values[0], want.Values[2]}) {
				t.Errorf("lookup %d row %d: %+v, want %+v", i, k, r, want)
			}
		}
	}
}

func TestWriteIsOnePipelinePerChunk(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	v := testView("chunks", 3)
	// Dial the pipeline connection first: its handshake would count too.
	if err := s.Write(ctx, v, []featurestore.Row{testRow(v, "warm", time.Unix(1, 0), 0)}); err != nil {
		t.Fatal(err)
	}
	var c counter
	s.client.AddHook(&c)
	for _, n := range []int{1, 10, writeChunkRows, 2*writeChunkRows + 1} {
		c.reset()
		rows := make([]featurestore.Row, n)
		for i := range rows {
			rows[i] = testRow(v, fmt.Sprintf("k%d", i), time.Unix(int64(i), 0), i)
		}
		if err := s.Write(ctx, v, rows); err != nil {
			t.Fatal(err)
		}
		want := int64((n + writeChunkRows - 1) / writeChunkRows)
		if got := c.pipelines.Load(); got != want || c.pipelinedCmds.Load() != int64(n) || c.cmds.Load() != 0 {
			t.Errorf("Write of %d rows: %d pipelines of %d commands and %d other commands, want %d pipelines",
				n, got, c.pipelinedCmds.Load(), c.cmds.Load(), want)
		}
	}
}

// The stored layout is documented in the package doc: one hash per row, _ts
// in decimal nanoseconds, values in AppendValue's encoding, absent values
// without a field.
func TestLayout(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	v := testView("layout", 6)
	r := testRow(v, featurestore.Key([]string{"u1", "m:2"}), time.Unix(1795600800, 123456789), 1)
	if err := s.Write(ctx, v, []featurestore.Row{r}); err != nil {
		t.Fatal(err)
	}
	key := s.prefix + ":layout:u1\x1fm:2"
	got, err := s.client.HGetAll(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"_ts": "1795600800123456789"}
	for i, f := range v.Features {
		want[f.Name] = string(featurestore.AppendValue(nil, r.Values[i]))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("hash %q holds\n %q\nwant\n %q", key, got, want)
	}

	// A later row with absent values replaces the hash whole.
	r2 := testRow(v, r.Key, r.EventTS.Add(time.Nanosecond), 2)
	r2.Values[1], r2.Values[3] = featurestore.Value{}, featurestore.Value{}
	if err := s.Write(ctx, v, []featurestore.Row{r2}); err != nil {
		t.Fatal(err)
	}
	got, err = s.client.HGetAll(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 5 || got["_ts"] != "1795600800123456790" || got["f1"] != "" || got["f3"] != "" {
		t.Errorf("after rewriting with f1 and f3 absent the hash holds %q", got)
	}
}

// Event times are compared exactly, to the nanosecond, also where a Lua
// double cannot tell them apart, and before 1970.
func TestEventTimeIsExact(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	v := testView("exact", 2)
	read := func(key string) featurestore.Row {
		t.Helper()
		l := []featurestore.Lookup{{View: v, Keys: []string{key}, Features: []int{0, 1}, Rows: make([]featurestore.Row, 1)}}
		if err := s.Read(ctx, l); err != nil {
			t.Fatal(err)
		}
		return l[0].Rows[0]
	}
	write := func(key string, ns int64, n int) {
		t.Helper()
		if err := s.Write(ctx, v, []featurestore.Row{testRow(v, key, time.Unix(0, ns), n)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		name     string
		stored   int64
		writes   []int64
		wantTime int64
	}{
		// 2^60 + 1 and 2^60 are one double.
		{"OneNanosecondOlder", 1<<60 + 1, []int64{1 << 60}, 1<<60 + 1},
		{"OneNanosecondNewer", 1 << 60, []int64{1<<60 + 1}, 1<<60 + 1},
		{"Equal", 1795600800123456789, []int64{1795600800123456789}, 1795600800123456789},
		{"MaxInt64", 1<<63 - 2, []int64{1<<63 - 1, 1<<63 - 3}, 1<<63 - 1},
		{"Before1970", -1_500_000_000, []int64{-2_000_000_000, -1_500_000_001}, -1_500_000_000},
		{"Before1970Newer", -1_500_000_000, []int64{-1_499_999_999}, -1_499_999_999},
		{"AcrossZero", -1, []int64{0, -2}, 0},
		{"SmallAndLarge", 999_999_999, []int64{1_000_000_000, 999_999_998}, 1_000_000_000},
		{"MinInt64", -1 << 63, []int64{-1<<63 + 1}, -1<<63 + 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			key := c.name
			write(key, c.stored, 0)
			for i, ns := range c.writes {
				write(key, ns, i+1)
			}
			got := read(key)
			if ns := got.EventTS.UnixNano(); !got.Found || ns != c.wantTime {
				t.Errorf("stored %d, wrote %d: read %d (found %v), want %d", c.stored, c.writes, ns, got.Found, c.wantTime)
			}
		})
	}
}

func TestRereadThroughGoRedis(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	v := testView("reread", 6)
	r := testRow(v, "u1", time.Unix(5, 0), 3)
	r.Values[2] = featurestore.Value{}
	if err := s.Write(ctx, v, []featurestore.Row{r}); err != nil {
		t.Fatal(err)
	}
	l := []featurestore.Lookup{{View: v, Keys: []string{"nobody", "u1"}, Features: []int{5, 2, 3, 0}, Rows: make([]featurestore.Row, 2)}}
	keys := []string{s.prefix + ":reread:nobody", s.prefix + ":reread:u1"}
	for k := range l[0].Rows {
		l[0].Rows[k] = featurestore.Row{Key: l[0].Keys[k], Values: make([]featurestore.Value, 4)}
	}
	if err := s.reread(ctx, l, keys, []rereadItem{{0, 0, 0}, {0, 1, 1}}); err != nil {
		t.Fatal(err)
	}
	if got := l[0].Rows[0]; got.Found {
		t.Errorf("missing key read as %+v", got)
	}
	want := featurestore.Row{Key: "u1", Found: true, EventTS: time.Unix(5, 0).UTC(), Values: []featurestore.Value{r.Values[5], {}, r.Values[3], r.Values[0]}}
	if got := l[0].Rows[1]; !reflect.DeepEqual(got, want) {
		t.Errorf("read %+v, want %+v", got, want)
	}
}

func TestCorruptValues(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	v := testView("corrupt", 2) // f0 float, f1 double
	key := s.prefix + ":corrupt:u1"
	lookup := func() error {
		return s.Read(ctx, []featurestore.Lookup{{View: v, Keys: []string{"u1"}, Features: []int{0, 1}, Rows: make([]featurestore.Row, 1)}})
	}
	if err := s.client.HSet(ctx, key, "_ts", "1", "f1", "abc").Err(); err != nil {
		t.Fatal(err)
	}
	err := lookup()
	if err == nil || !strings.Contains(err.Error(), "view corrupt") || !strings.Contains(err.Error(), `key "u1"`) || !strings.Contains(err.Error(), "feature f1") {
		t.Errorf("reading a 3-byte double: %v, want an error naming view, key and feature", err)
	}
	if err := s.client.HSet(ctx, key, "_ts", "yesterday", "f1", "12345678").Err(); err != nil {
		t.Fatal(err)
	}
	if err := lookup(); err == nil || !strings.Contains(err.Error(), "_ts") {
		t.Errorf("reading a corrupt _ts: %v", err)
	}
	// A corrupt _ts counts as absent for writes: the row is replaced.
	if err := s.Write(ctx, v, []featurestore.Row{testRow(v, "u1", time.Unix(0, 7), 0)}); err != nil {
		t.Fatal(err)
	}
	if err := lookup(); err != nil {
		t.Errorf("after a write over a corrupt row: %v", err)
	}
	// A key of another type is an error, not a missing row.
	if err := s.client.Set(ctx, key, "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := lookup(); err == nil || !strings.Contains(err.Error(), "WRONGTYPE") || !strings.Contains(err.Error(), `key "u1"`) {
		t.Errorf("reading a string key: %v", err)
	}
	if err := s.Write(ctx, v, []featurestore.Row{testRow(v, "u1", time.Unix(0, 8), 0)}); err == nil || !strings.Contains(err.Error(), `key "u1"`) {
		t.Errorf("writing over a string key: %v", err)
	}
}

func TestScriptReloaded(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	v := testView("noscript", 2)
	if err := s.client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	rows := []featurestore.Row{testRow(v, "a", time.Unix(1, 0), 1), testRow(v, "b", time.Unix(1, 0), 2)}
	if err := s.Write(ctx, v, rows); err != nil {
		t.Fatalf("Write after SCRIPT FLUSH: %v", err)
	}
	l := []featurestore.Lookup{{View: v, Keys: []string{"a", "b"}, Features: []int{1}, Rows: make([]featurestore.Row, 2)}}
	if err := s.Read(ctx, l); err != nil {
		t.Fatal(err)
	}
	if !l[0].Rows[0].Found || !l[0].Rows[1].Found {
		t.Errorf("rows written after SCRIPT FLUSH read as %+v", l[0].Rows)
	}
}

func TestDropKeepsOtherViews(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	a, ab := testView("a", 1), testView("ab", 1)
	const n = 2500 // several SCAN batches
	var rows []featurestore.Row
	for i := range n {
		rows = append(rows, testRow(a, fmt.Sprint(i), time.Unix(1, 0), i))
	}
	if err := s.Write(ctx, a, rows); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, ab, []featurestore.Row{testRow(ab, "0", time.Unix(1, 0), 0)}); err != nil {
		t.Fatal(err)
	}
	if err := s.Drop(ctx, a); err != nil {
		t.Fatal(err)
	}
	l := []featurestore.Lookup{
		{View: a, Keys: []string{"0", "2499"}, Features: []int{0}, Rows: make([]featurestore.Row, 2)},
		{View: ab, Keys: []string{"0"}, Features: []int{0}, Rows: make([]featurestore.Row, 1)},
	}
	if err := s.Read(ctx, l); err != nil {
		t.Fatal(err)
	}
	if l[0].Rows[0].Found || l[0].Rows[1].Found || !l[1].Rows[0].Found {
		t.Errorf("after Drop(a): a rows %+v, ab rows %+v", l[0].Rows, l[1].Rows)
	}
}

func TestInvalidInput(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	v := testView("invalid", 2)
	short := featurestore.Row{Key: "k", Values: []featurestore.Value{{Type: featurestore.Float}}}
	mistyped := featurestore.Row{Key: "k", Values: []featurestore.Value{{Type: featurestore.Float}, {Type: featurestore.String}}}
	for _, rows := range [][]featurestore.Row{{short}, {mistyped}} {
		if err := s.Write(ctx, v, rows); !errors.Is(err, featurestore.ErrInvalid) {
			t.Errorf("Write %+v: %v, want ErrInvalid", rows, err)
		}
	}
	for _, l := range []featurestore.Lookup{
		{View: v, Keys: []string{"k"}, Features: []int{2}, Rows: make([]featurestore.Row, 1)},
		{View: v, Keys: []string{"k"}, Features: []int{-1}, Rows: make([]featurestore.Row, 1)},
		{View: v, Keys: []string{"k"}, Features: []int{0}},
		{Keys: []string{"k"}, Features: []int{0}, Rows: make([]featurestore.Row, 1)},
	} {
		if err := s.Read(ctx, []featurestore.Lookup{l}); !errors.Is(err, featurestore.ErrInvalid) {
			t.Errorf("Read %+v: %v, want ErrInvalid", l, err)
		}
	}
	if err := s.Read(ctx, nil); err != nil {
		t.Errorf("Read of no lookups: %v", err)
	}
	if err := s.Write(ctx, v, nil); err != nil {
		t.Errorf("Write of no rows: %v", err)
	}
}

// A lookup of no features still tells found from missing rows.
func TestNoFeatures(t *testing.T) {
	s := newStore(t)
	ctx := context.Background()
	v := testView("nofeatures", 2)
	if err := s.Write(ctx, v, []featurestore.Row{testRow(v, "u1", time.Unix(3, 0), 0)}); err != nil {
		t.Fatal(err)
	}
	l := []featurestore.Lookup{{View: v, Keys: []string{"u1", "u2"}, Rows: make([]featurestore.Row, 2)}}
	if err := s.Read(ctx, l); err != nil {
		t.Fatal(err)
	}
	if r := l[0].Rows; !r[0].Found || !r[0].EventTS.Equal(time.Unix(3, 0)) || len(r[0].Values) != 0 || r[1].Found {
		t.Errorf("rows %+v", r)
	}
}

// New needs no server to fail, so this runs without TEST_REDIS_ADDR too.
func TestNewUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := New(ctx, Options{Addrs: []string{"127.0.0.1:1"}, DialTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("New on a closed port: %v, want an error naming the address", err)
	}
	if _, err := New(ctx, Options{}); !errors.Is(err, featurestore.ErrInvalid) {
		t.Errorf("New without addresses: %v", err)
	}
	if _, err := New(ctx, Options{Addrs: []string{"127.0.0.1:1", "127.0.0.1:2"}, DB: 3}); !errors.Is(err, featurestore.ErrInvalid) {
		t.Errorf("New of a cluster with DB 3: %v", err)
	}
}

// Replies are decoded from raw RESP, in both protocol versions.
func TestDecodeRow(t *testing.T) {
	v := &featurestore.View{Name: "v", Features: []featurestore.Feature{
		{Name: "a", Type: featurestore.Int}, {Name: "b", Type: featurestore.String}, {Name: "c", Type: featurestore.FloatList},
	}}
	seven := string(featurestore.AppendValue(nil, featurestore.Value{Type: featurestore.Int, Int: 7}))
	for _, c := range []struct {
		name, raw string
		want      featurestore.Row
		err       string
	}{
		{"RESP3", "*4\r\n$2\r\n42\r\n$8\r\n" + seven + "\r\n_\r\n$0\r\n\r\n",
			featurestore.Row{Found: true, EventTS: time.Unix(0, 42).UTC(), Values: []featurestore.Value{{Type: featurestore.Int, Int: 7}, {}, {Type: featurestore.FloatList, List: []float32{}}}}, ""},
		{"RESP2", "*4\r\n$2\r\n42\r\n$-1\r\n$4\r\nx\r\ny\r\n$-1\r\n",
			featurestore.Row{Found: true, EventTS: time.Unix(0, 42).UTC(), Values: []featurestore.Value{{}, {Type: featurestore.String, Str: "x\r\ny"}, {}}}, ""},
		{"Missing", "*4\r\n_\r\n_\r\n_\r\n_\r\n", featurestore.Row{Values: make([]featurestore.Value, 3)}, ""},
		{"MissingRESP2", "*4\r\n$-1\r\n$-1\r\n$-1\r\n$-1\r\n", featurestore.Row{Values: make([]featurestore.Value, 3)}, ""},
		{"Error", "-WRONGTYPE Operation against a key\r\n", featurestore.Row{}, "WRONGTYPE Operation against a key"},
		{"Truncated", "*4\r\n$2\r\n42\r\n$8\r\n1234", featurestore.Row{}, "truncated"},
		{"Count", "*2\r\n$2\r\n42\r\n_\r\n", featurestore.Row{}, "2 values for 4 fields"},
		{"BadFloatList", "*4\r\n$1\r\n1\r\n_\r\n_\r\n$3\r\nabc\r\n", featurestore.Row{}, "feature c: "},
	} {
		t.Run(c.name, func(t *testing.T) {
			row := featurestore.Row{Values: make([]featurestore.Value, 3)}
			err := decodeRow([]byte(c.raw), v, []int{0, 1, 2}, &row)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Errorf("error %v, want one containing %q", err, c.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(row, c.want) {
				t.Errorf("decoded %+v, %v; want %+v", row, err, c.want)
			}
		})
	}
}

func benchmarkRead(b *testing.B, entities, features int) {
	s := newStore(b)
	ctx := context.Background()
	v := testView(fmt.Sprintf("bench_%d_%d", entities, features), features)
	rows := make([]featurestore.Row, entities)
	keys := make([]string, entities)
	for i := range rows {
		keys[i] = fmt.Sprintf("user-%d", i)
		rows[i] = testRow(v, keys[i], time.Unix(1795600800, 0), i)
	}
	if err := s.Write(ctx, v, rows); err != nil {
		b.Fatal(err)
	}
	l := []featurestore.Lookup{{View: v, Keys: keys, Features: seq(features), Rows: make([]featurestore.Row, entities)}}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Read(ctx, l); err != nil {
			b.Fatal(err)
		}
	}
	if !l[0].Rows[entities-1].Found {
		b.Fatal("rows not found")
	}
}

func BenchmarkRead_Entities100_Features50(b *testing.B) { benchmarkRead(b, 100, 50) }
func BenchmarkRead_Entities1_Features10(b *testing.B)   { benchmarkRead(b, 1, 10) }

func BenchmarkWrite_Rows100_Features50(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	v := testView("bench_write", 50)
	rows := make([]featurestore.Row, 100)
	for i := range rows {
		rows[i] = testRow(v, fmt.Sprintf("user-%d", i), time.Unix(1795600800, 0), i)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Write(ctx, v, rows); err != nil {
			b.Fatal(err)
		}
	}
}

// On a cluster, a Read of a key whose slot moved after go-redis learned the
// slot map (its raw reply is an ASK or MOVED redirect) reads it again
// through go-redis, which follows the redirect.
func TestReadFollowsSlotMove(t *testing.T) {
	s := newClusterStore(t)
	ctx := context.Background()
	v := testView("moved", 3)
	r := testRow(v, "u1", time.Unix(9, 0), 1)
	if err := s.Write(ctx, v, []featurestore.Row{r}); err != nil {
		t.Fatal(err)
	}
	read := func() featurestore.Row {
		t.Helper()
		l := []featurestore.Lookup{{View: v, Keys: []string{"u1"}, Features: []int{0, 1, 2}, Rows: make([]featurestore.Row, 1)}}
		if err := s.Read(ctx, l); err != nil {
			t.Fatal(err)
		}
		return l[0].Rows[0]
	}
	read()

	key := s.prefix + ":moved:u1"
	slot, err := s.client.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	// The masters, by address, and their node IDs.
	nodes := map[string]*goredis.Client{}
	ids := map[string]string{}
	var src string
	var mu sync.Mutex // ForEachMaster calls concurrently
	if err := s.cluster.ForEachMaster(ctx, func(ctx context.Context, c *goredis.Client) error {
		id, err := c.Do(ctx, "cluster", "myid").Text()
		if err != nil {
			return err
		}
		n, err := c.ClusterCountKeysInSlot(ctx, int(slot)).Result()
		if err != nil {
			return err
		}
		addr := c.Options().Addr
		mu.Lock()
		defer mu.Unlock()
		nodes[addr], ids[addr] = goredis.NewClient(&goredis.Options{Addr: addr}), id
		if n > 0 {
			src = addr
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, c := range nodes {
			c.Close()
		}
	}()
	var dst string
	for addr := range nodes {
		if addr != src {
			dst = addr
			break
		}
	}
	if src == "" || dst == "" {
		t.Fatalf("cannot find two masters (source %q) among %v", src, ids)
	}
	must := func(c *goredis.Client, args ...any) {
		t.Helper()
		if err := c.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v on %s: %v", args, c.Options().Addr, err)
		}
	}
	// Move the slot, as redis-cli --cluster reshard does.
	must(nodes[dst], "cluster", "setslot", slot, "importing", ids[src])
	must(nodes[src], "cluster", "setslot", slot, "migrating", ids[dst])
	host, port, _ := strings.Cut(dst, ":")
	must(nodes[src], "migrate", host, port, key, 0, 5000)

	var c counter
	s.client.AddHook(&c)
	// The key has left; its slot is still the source's: ASK.
	if got := read(); !got.Found || !reflect.DeepEqual(got.Values, r.Values) {
		t.Errorf("read during the migration %+v, want %+v", got, r)
	}
	for _, addr := range []string{dst, src} {
		must(nodes[addr], "cluster", "setslot", slot, "node", ids[dst])
	}
	for addr, n := range nodes {
		if addr != src && addr != dst {
			must(n, "cluster", "setslot", slot, "node", ids[dst])
		}
	}
	// The slot is the destination's; go-redis may still send it to the
	// source: MOVED.
	if got := read(); !got.Found || !reflect.DeepEqual(got.Values, r.Values) {
		t.Errorf("read after the migration %+v, want %+v", got, r)
	}
	// A read of one key is one command, not a pipeline (Store.send); a
	// redirect is read again in a pipeline.
	trips := c.cmds.Load() + c.pipelines.Load()
	if trips < 3 {
		t.Errorf("%d round trips for two reads, want a second round trip for at least the ASK", trips)
	}
	t.Logf("%d round trips (%d commands, %d pipelines) for two reads across a slot move", trips, c.cmds.Load(), c.pipelines.Load())
}

// BenchmarkDecodeRow_Features50 measures the client's decoding of one row's
// raw reply alone, without a server.
func BenchmarkDecodeRow_Features50(b *testing.B) {
	v := testView("decode", 50)
	r := testRow(v, "u1", time.Unix(1795600800, 0), 7)
	reply := []any{strconv.FormatInt(r.EventTS.UnixNano(), 10)}
	for _, val := range r.Values {
		reply = append(reply, string(featurestore.AppendValue(nil, val)))
	}
	raw := appendRESP(nil, reply)
	features := seq(50)
	row := featurestore.Row{Values: make([]featurestore.Value, 50)}
	b.ReportAllocs()
	for b.Loop() {
		if err := decodeRow(raw, v, features, &row); err != nil {
			b.Fatal(err)
		}
	}
}
