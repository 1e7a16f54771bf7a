package testservers

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// FeastRepo is a Feast repository whose feature view Feast itself (through
// FeastPython) materialized into the test Redis, under a project of its own.
// The script is featurestore/feast/testdata/feast_repo.py, which says what
// the view holds.
type FeastRepo struct {
	Dir     string
	Project string
	// Redis is the address Feast wrote to: the first of RedisAddrs.
	Redis string
	// RedisAddrs are the addresses of the server, or of a cluster's nodes.
	RedisAddrs []string
	python     string
	script     string
}

// NewFeastRepo has Feast apply a repository of n drivers in a directory of
// the test's and materialize it into the test Redis; the keys are removed
// when the test ends. script is the path of feast_repo.py.
func NewFeastRepo(tb testing.TB, script string, n int) *FeastRepo {
	tb.Helper()
	return NewFeastRepoOn(tb, script, n, Redis(tb)[:1])
}

// NewFeastRepoOn is NewFeastRepo on the Redis at addrs: a standalone server,
// or the nodes of a Redis Cluster (RedisCluster), which Feast then writes to
// as its redis_type redis_cluster.
func NewFeastRepoOn(tb testing.TB, script string, n int, addrs []string) *FeastRepo {
	tb.Helper()
	r := &FeastRepo{Dir: tb.TempDir(), Project: fmt.Sprintf("mlgate_%08x", rand.Uint32()),
		Redis: addrs[0], RedisAddrs: addrs, python: FeastPython(tb), script: script}
	tb.Cleanup(func() { r.unlink(tb) })
	r.run(tb, "setup", r.Dir, strings.Join(addrs, ","), r.Project, strconv.Itoa(n))
	return r
}

// FeastAnswer is what Feast's get_online_features answered, by feature.
type FeastAnswer struct {
	IDs      []int64 `json:"ids"`
	Features map[string]struct {
		Values   []any    `json:"values"`
		Statuses []string `json:"statuses"`
	} `json:"features"`
}

// Online returns Feast's get_online_features for the driver ids.
func (r *FeastRepo) Online(tb testing.TB, ids []int64) *FeastAnswer {
	tb.Helper()
	args := []string{"read", r.Dir}
	for _, id := range ids {
		args = append(args, strconv.FormatInt(id, 10))
	}
	var a FeastAnswer
	if err := json.Unmarshal(r.run(tb, args...), &a); err != nil {
		tb.Fatalf("feast read: %v", err)
	}
	return &a
}

func (r *FeastRepo) run(tb testing.TB, args ...string) []byte {
	tb.Helper()
	cmd := exec.Command(r.python, append([]string{r.script}, args...)...)
	var stderr []byte
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		stderr = ee.Stderr
	}
	if err != nil {
		tb.Fatalf("feast_repo.py %s: %v\n%s", args[0], err, stderr)
	}
	return out
}

// unlink removes the keys of the project (Feast's keys end with it), from
// every master of a cluster.
func (r *FeastRepo) unlink(tb testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: r.RedisAddrs})
	defer c.Close()
	scan := func(ctx context.Context, node *goredis.Client) error {
		iter := node.Scan(ctx, 0, "*"+r.Project, 1000).Iterator()
		for iter.Next(ctx) {
			c.Unlink(ctx, iter.Val())
		}
		return iter.Err()
	}
	var err error
	if cc, ok := c.(*goredis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, scan)
	} else {
		err = scan(ctx, c.(*goredis.Client))
	}
	if err != nil {
		tb.Logf("remove Feast's keys of project %s: %v", r.Project, err)
	}
}

// SameAsFeast reports whether mlgate's value (a Go value, or as JSON decodes it) is the one Feast answered (as JSON decodes it), for a feature of mlgate type t: floats compare as
// float32, what Feast answers null for must be absent.
func SameAsFeast(t string, got, want any) bool {
	if got == nil || want == nil {
		return got == nil && want == nil
	}
	f32 := func(x any) float32 {
		switch x := x.(type) {
		case float64:
			return float32(x)
		case float32:
			return x
		}
		return float32(math.NaN())
	}
	switch t {
	case "float":
		return f32(got) == f32(want)
	case "int":
		return fmt.Sprint(got) == fmt.Sprint(want)
	case "float_list":
		var a, b []float32
		for _, x := range toSlice(got) {
			a = append(a, f32(x))
		}
		for _, x := range toSlice(want) {
			b = append(b, f32(x))
		}
		return slices.Equal(a, b)
	}
	return got == want
}

func toSlice(x any) []any {
	switch x := x.(type) {
	case []any:
		return x
	case []float32:
		out := make([]any, len(x))
		for i, f := range x {
			out[i] = f
		}
		return out
	}
	return nil
}
