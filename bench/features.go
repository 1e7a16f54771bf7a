package main

// The predict scenarios: POST /v1/models/{name}/predict with entity keys,
// for a model whose feature spec fills its input from a feature view in
// Redis.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/modelzoo"
)

// predictCase is one predict scenario.
type predictCase struct {
	name     string // of the scenario
	view     string // feature view, of `features` float features f0, f1...
	features int
	entities int    // distinct entities per request
	model    string // modelzoo file: x FP32 [batch,features] → y FP32 [batch,1]
	// latency: an open-loop phase at -rate with mlgate's p99 goal, then a
	// closed-loop one for information; otherwise one closed-loop phase with
	// the throughput goal.
	latency bool
}

var (
	predict1x10   = predictCase{name: "predict-1x10", view: "f10", features: 10, entities: 1, model: modelzoo.Dense10}
	predict100x50 = predictCase{name: "predict-100x50", view: "f50", features: 50, entities: 100, model: modelzoo.Dense50, latency: true}
)

// The goals of the predict scenarios (issue 11).
const (
	predictRatioGoal = 0.85                  // predict-1x10: mlgate ≥ 0.85 × the floor's throughput
	predictP99Goal   = 10 * time.Millisecond // predict-100x50: mlgate's p99 at -rate
	predictCPUGoal   = 1.3                   // predict-100x50: mlgate's CPU/request at -rate ≤ 1.3 × the floor's
	openMaxConns     = 512                   // connections the open loop may open
)

func (pc predictCase) modelName() string { return strings.TrimSuffix(pc.model, ".onnx") }
func (pc predictCase) path() string      { return "/v1/models/" + pc.modelName() + "/predict" }

// The stored values: feature j of user u is a multiple of 1/4 in [-8, 7.75],
// and the dense models' weights are multiples of 1/8, so every product and
// sum is exact in float32 and both targets must answer exactly want.
func featureValue(u, j int) float32 { return float32((u*7+j*13)%64-32) / 4 }
func weight(j int) float32          { return float32(j%7-3) / 8 }

func (pc predictCase) want(u int) float32 {
	var y float32
	for j := range pc.features {
		y += featureValue(u, j) * weight(j)
	}
	return y
}

func userID(u int) string { return "u" + strconv.Itoa(u) }

// startPredict starts mlgate on the Redis of TEST_REDIS_ADDR, with a key
// prefix of its own, sets up the view, its rows and the model through the
// API, starts the floor on the same keys, and checks that both answer
// exactly what the model gives and read Redis as they should.
func startPredict(cfg options, pc predictCase) (sc *scenario, err error) {
	ctx := context.Background()
	addr, rdb, err := benchRedis(ctx)
	if err != nil {
		return nil, err
	}
	prefix := "mlgate-bench-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var closers []func()
	closeAll := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}
	closers = append(closers, func() {
		if err := deleteKeys(ctx, rdb, prefix+":*"); err != nil {
			fmt.Fprintf(os.Stderr, "bench: delete the benchmark's keys %s:* from Redis: %v\n", prefix, err)
		}
		rdb.Close()
	})
	defer func() {
		if err != nil {
			closeAll()
		}
	}()

	gateway, err := startGateway(func(c *config.Config) {
		c.OnlineStore.Redis.Addr, c.OnlineStore.Redis.KeyPrefix = addr, prefix
	})
	if err != nil {
		return nil, fmt.Errorf("start mlgate: %w", err)
	}
	closers = append(closers, gateway.close)
	started := time.Now()
	if err := setupFeatures(gateway.addr, pc, cfg.users); err != nil {
		return nil, fmt.Errorf("set up mlgate through its API: %w", err)
	}
	setupTook := time.Since(started)
	floor, err := startPredictFloor(pc, addr, prefix)
	if err != nil {
		return nil, fmt.Errorf("start the floor: %w", err)
	}
	closers = append(closers, floor.close)

	bodies := predictBodies(pc, cfg.users)
	targets := []*target{{name: "floor", srv: floor}, {name: "mlgate", srv: gateway}}
	for _, t := range targets {
		if err := checkPredict(t.srv.addr, pc, bodies); err != nil {
			return nil, fmt.Errorf("%s answers wrongly, not benchmarking it: %w", t.name, err)
		}
	}
	var trips []string
	for _, t := range targets {
		s, err := checkRoundTrips(ctx, rdb, t, pc, bodies[0])
		if err != nil {
			return nil, err
		}
		trips = append(trips, s)
	}
	server, err := redisInfo(ctx, rdb, "server")
	if err != nil {
		return nil, err
	}

	features := make([]string, pc.features)
	for j := range features {
		features[j] = pc.view + ":f" + strconv.Itoa(j)
	}
	sc = &scenario{
		name:    pc.name,
		heading: fmt.Sprintf("%s: %d entit%s × %d features from Redis per request", pc.name, pc.entities, plural(pc.entities, "y", "ies"), pc.features),
		bullets: []string{
			fmt.Sprintf("Redis: %s at %s (TEST_REDIS_ADDR), standalone, key prefix %s; a client of its own reads INFO", server["redis_version"], addr, prefix),
			fmt.Sprintf("mlgate: view %s (%d float features f0…f%d, entity user_id, store redis, cache_ttl 0: no cache), %d rows written through POST /v1/feature-views/%s/rows (%s); model %s (%s) registered with feature_spec x ← %s…%s",
				pc.view, pc.features, pc.features-1, cfg.users, pc.view, setupTook.Round(time.Millisecond), pc.modelName(), pc.model, features[0], features[len(features)-1]),
			fmt.Sprintf("Requests: `{\"entities\": {\"user_id\": [...]}}` with %s each, asking for the %d users in turn; both targets' answers were checked against the model's exact outputs first", idsEach(pc.entities), cfg.users),
			floorDescription(pc),
			"Redis round trips, from Redis's own counters (INFO stats and commandstats before and after one request to each target, less what two INFOs in a row count; a client that waits for each reply before sending the next command needs a read event per command): " + strings.Join(trips, "; "),
		},
		targets: targets,
		load:    load{path: pc.path(), bodies: bodies, warmup: cfg.warmup, measure: cfg.duration, sideCPU: redisCPU(rdb)},
		close:   closeAll,
	}
	closed := &phase{title: fmt.Sprintf("Closed loop, %d workers", cfg.concurrency), key: "closed", workers: cfg.concurrency}
	if pc.latency {
		open := &phase{title: fmt.Sprintf("Open loop at %.0f requests/s", cfg.rate), key: "open", rate: cfg.rate, maxConns: openMaxConns, maxP99: predictP99Goal, maxCPURatio: predictCPUGoal}
		closed.title += " (throughput, for information)"
		sc.phases = []*phase{open, closed}
	} else {
		closed.minRatio = predictRatioGoal
		sc.phases = []*phase{closed}
	}
	return sc, nil
}

func idsEach(n int) string {
	if n == 1 {
		return "1 user id"
	}
	return fmt.Sprintf("%d distinct user ids", n)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// setupFeatures creates the view, writes its rows and registers the model
// with its feature spec, all through mlgate's HTTP API.
func setupFeatures(addr string, pc predictCase, users int) error {
	base := "http://" + addr
	var view bytes.Buffer
	view.WriteString(`{"entities": ["user_id"], "store": "redis", "cache_ttl": "0s", "features": [`)
	for j := range pc.features {
		if j > 0 {
			view.WriteString(", ")
		}
		fmt.Fprintf(&view, `{"name": "f%d", "type": "float"}`, j)
	}
	view.WriteString("]}")
	if err := call(http.MethodPut, base+"/v1/feature-views/"+pc.view, "application/json", &view); err != nil {
		return err
	}

	const batch = 1000
	for first := 0; first < users; first += batch {
		b := []byte(`{"rows": [`)
		for u := first; u < min(first+batch, users); u++ {
			if u > first {
				b = append(b, ',')
			}
			b = append(b, `{"user_id":"`...)
			b = append(b, userID(u)...)
			b = append(b, '"')
			for j := range pc.features {
				b = append(b, `,"f`...)
				b = strconv.AppendInt(b, int64(j), 10)
				b = append(b, `":`...)
				b = strconv.AppendFloat(b, float64(featureValue(u, j)), 'g', -1, 32)
			}
			b = append(b, '}')
		}
		b = append(b, "]}"...)
		if err := call(http.MethodPost, base+"/v1/feature-views/"+pc.view+"/rows", "application/json", bytes.NewReader(b)); err != nil {
			return err
		}
	}

	refs := make([]string, pc.features)
	for j := range refs {
		refs[j] = strconv.Quote(pc.view + ":f" + strconv.Itoa(j))
	}
	metadata := `{"feature_spec": {"entities": ["user_id"], "inputs": {"x": [` + strings.Join(refs, ", ") + `]}}}`
	return register(addr, pc.modelName(), modelzoo.Path(pc.model), metadata)
}

// predictBodies returns the requests: one per user for one entity a
// request, otherwise 1000 requests of consecutive users (wrapping around),
// so that the users are asked for in turn.
func predictBodies(pc predictCase, users int) [][]byte {
	n := users
	if pc.entities > 1 {
		n = 1000
	}
	bodies := make([][]byte, n)
	for i := range bodies {
		b := []byte(`{"entities":{"user_id":[`)
		for k := range pc.entities {
			if k > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, userID((i*pc.entities+k)%users)...)
			b = append(b, '"')
		}
		bodies[i] = append(b, "]}}"...)
	}
	return bodies
}

// usersOf returns the users a body asks for.
func usersOf(body []byte) ([]int, error) {
	var req floorPredictRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	users := make([]int, len(req.Entities.UserID))
	for i, id := range req.Entities.UserID {
		u, err := strconv.Atoi(strings.TrimPrefix(id, "u"))
		if err != nil {
			return nil, err
		}
		users[i] = u
	}
	return users, nil
}

// checkPredict sends some of the bodies (the first 20 and the last) and
// compares the answers with the model's exact outputs.
func checkPredict(addr string, pc predictCase, bodies [][]byte) error {
	some := append(bodies[:min(20, len(bodies)):min(20, len(bodies))], bodies[len(bodies)-1])
	for _, body := range some {
		answer, err := post(addr, pc.path(), body)
		if err != nil {
			return err
		}
		var got struct {
			Outputs struct {
				Y [][]float32 `json:"y"`
			} `json:"outputs"`
		}
		if err := json.Unmarshal(answer, &got); err != nil {
			return fmt.Errorf("%w: %s", err, answer)
		}
		users, err := usersOf(body)
		if err != nil {
			return err
		}
		if len(got.Outputs.Y) != len(users) {
			return fmt.Errorf("%d outputs for %d entities: %s", len(got.Outputs.Y), len(users), answer)
		}
		for i, u := range users {
			if len(got.Outputs.Y[i]) != 1 || got.Outputs.Y[i][0] != pc.want(u) {
				return fmt.Errorf("user %s: y = %v, want [%v] (request %s)", userID(u), got.Outputs.Y[i], pc.want(u), body)
			}
		}
	}
	return nil
}

// checkRoundTrips sends body (already sent once by checkPredict, so that a
// cache would answer it) to t and checks in Redis's counters that the target
// sent one HMGET per entity, pipelined: in fewer read events than commands,
// which a client waiting for each reply could not do. It tries three times
// and keeps the attempt with the fewest other commands (a new pool
// connection's handshake, say). It describes what Redis saw.
func checkRoundTrips(ctx context.Context, rdb *goredis.Client, t *target, pc predictCase, body []byte) (string, error) {
	var best redisTraffic
	for attempt := range 3 {
		tr, err := trafficOf(ctx, rdb, func() error {
			_, err := post(t.srv.addr, pc.path(), body)
			return err
		})
		if err != nil {
			return "", fmt.Errorf("%s: count its Redis commands: %w", t.name, err)
		}
		if attempt == 0 || tr.commands-tr.hmgets < best.commands-best.hmgets {
			best = tr
		}
	}
	n := int64(pc.entities)
	switch {
	case best.hmgets != n:
		return "", fmt.Errorf("%s sent %d HMGETs to Redis for a request of %d entities, want %d (is a cache answering, or is Redis shared with other clients?)", t.name, best.hmgets, n, n)
	case n > 1 && best.reads >= n:
		return "", fmt.Errorf("%s's %d HMGETs reached Redis in %d read events: not pipelined (or Redis is shared with other clients)", t.name, n, best.reads)
	}
	s := fmt.Sprintf("%s %d HMGET%s in %d read event%s (%.1f KiB)", t.name, best.hmgets, plural(int(best.hmgets), "", "s"), best.reads, plural(int(best.reads), "", "s"), float64(best.inBytes)/1024)
	if other := best.commands - best.hmgets; other != 0 {
		s += fmt.Sprintf(", %d other command(s)", other)
	}
	return s, nil
}
