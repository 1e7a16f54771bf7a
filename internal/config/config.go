package config

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is mlgate's configuration. Defaults() gives the embedded defaults.
type Config struct {
	// Listen is the host:port the gateway serves on.
	Listen string `yaml:"listen"`
	// GRPC serves the V2 inference protocol over gRPC too.
	GRPC GRPC `yaml:"grpc"`
	// DataDir holds the gateway's persistent state.
	DataDir     string      `yaml:"data_dir"`
	Log         Log         `yaml:"log"`
	Registry    Registry    `yaml:"registry"`
	ONNX        ONNX        `yaml:"onnx"`
	Server      Server      `yaml:"server"`
	Auth        Auth        `yaml:"auth"`
	OnlineStore OnlineStore `yaml:"online_store"`
	Tables      Tables      `yaml:"inference_tables"`
	Limits      Limits      `yaml:"limits"`
	Telemetry   Telemetry   `yaml:"telemetry"`
	// ControlPlane is where the registry, the feature views, the endpoints
	// and the drift monitors are kept: one process's files, or a database
	// that a fleet of replicas shares.
	ControlPlane ControlPlane `yaml:"control_plane"`
}

// GRPC configures the gRPC server of the V2 inference protocol
// (inference.GRPCInferenceService, with grpc.health.v1 and reflection). It
// shares the HTTP server's keys, limits, deadlines and TLS (server.tls).
type GRPC struct {
	// Listen is the host:port it serves on; empty: no gRPC server.
	Listen string `yaml:"listen"`
}

// Tables configures the inference tables: every prediction as a row in
// Parquet files under Dir.
type Tables struct {
	Enabled bool `yaml:"enabled"`
	// Dir holds the tables; empty: <data_dir>/inference. The replicas of a
	// fleet may share one directory (a shared volume): each writes files of
	// its own, named with its control_plane.replica_id, and readers see one
	// table.
	Dir string `yaml:"dir"`
	// MaxFileBytes and MaxFileAge roll a file.
	MaxFileBytes Size     `yaml:"max_file_bytes"`
	MaxFileAge   Duration `yaml:"max_file_age"`
	// FlushInterval bounds what a crash can lose.
	FlushInterval Duration `yaml:"flush_interval"`
	// QueueSize bounds the rows waiting to be written; beyond it rows spill
	// to a local file (Spill) or are dropped and counted.
	QueueSize int  `yaml:"queue_size"`
	Spill     bool `yaml:"spill"`
	// PIIKey keys the hash that replaces PII fields; empty: a key generated
	// once and kept in the data directory.
	PIIKey string `yaml:"pii_key"`
}

// OnlineStore configures where online feature values live.
type OnlineStore struct {
	// Default is the store of views that name none: embedded, redis or
	// cassandra.
	Default string `yaml:"default"`
	// CacheEntries bounds the LRU cache of feature rows; 0 disables it.
	CacheEntries int `yaml:"cache_entries"`
	// Timeout bounds each read from a store (within the request's
	// deadline): a store that has not answered by then counts as failed,
	// and the read is answered from the cache or the defaults.
	Timeout Duration `yaml:"timeout"`
	// WriteTimeout bounds each write to a store (rows, a view's creation
	// or removal), which may carry limits.max_rows rows; a write that runs
	// out of it answers 503.
	WriteTimeout Duration  `yaml:"write_timeout"`
	Breaker      Breaker   `yaml:"breaker"`
	Redis        Redis     `yaml:"redis"`
	Cassandra    Cassandra `yaml:"cassandra"`
}

// Redis configures the Redis online store; it is used when Addr or
// ClusterAddrs is set.
type Redis struct {
	// Addr is host:port of a standalone server.
	Addr string `yaml:"addr"`
	// ClusterAddrs are seed host:port addresses of a Redis Cluster.
	ClusterAddrs []string  `yaml:"cluster_addrs"`
	Password     string    `yaml:"password"`
	DB           int       `yaml:"db"`
	KeyPrefix    string    `yaml:"key_prefix"`
	TLS          ClientTLS `yaml:"tls"`
}

// Cassandra configures the Cassandra online store; it is used when Hosts is
// set.
type Cassandra struct {
	Hosts []string `yaml:"hosts"` // host:port of contact points
	// Keyspace is created when missing, with SimpleStrategy and
	// ReplicationFactor.
	Keyspace          string    `yaml:"keyspace"`
	ReplicationFactor int       `yaml:"replication_factor"`
	Consistency       string    `yaml:"consistency"`
	Timeout           Duration  `yaml:"timeout"`
	Username          string    `yaml:"username"`
	Password          string    `yaml:"password"`
	TLS               ClientTLS `yaml:"tls"`
}

// Log configures logging.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn or error
	Format string `yaml:"format"` // text or json
}

// Registry configures the model registry.
type Registry struct {
	MaxModelBytes Size `yaml:"max_model_bytes"` // largest accepted model upload
	// ProtectedAliases maps an alias to the validation status (PENDING,
	// PASSED or FAILED) a version must have for the alias to point at it;
	// moving the alias elsewhere is refused unless an admin forces it. The
	// default protects champion with PASSED; an empty mapping protects none.
	ProtectedAliases map[string]string `yaml:"protected_aliases"`
	// MLflow mirrors the models of an MLflow Model Registry.
	MLflow MLflow `yaml:"mlflow"`
}

// MLflow configures the mirror of an MLflow Model Registry: each version
// of the models named whose artifacts hold an ONNX model becomes an mlgate
// version of the same number, and the aliases follow MLflow's. Mirrored
// models are read-only in mlgate.
type MLflow struct {
	// TrackingURI is the tracking server, http(s)://host:port; empty: no
	// mirror.
	TrackingURI string `yaml:"tracking_uri"`
	// Token, when set, is sent as a bearer token. Keep it in the
	// environment (MLGATE_REGISTRY_MLFLOW_TOKEN) or a Secret.
	Token string `yaml:"token"`
	// Models are the registered models to mirror; empty: all of them.
	Models []string `yaml:"models"`
	// Poll is how often MLflow is read.
	Poll Duration `yaml:"poll"`
}

// ONNX configures the ONNX Runtime backend.
type ONNX struct {
	// Library is the path to libonnxruntime. Empty means search for it
	// (ONNXRUNTIME_LIB, the repository cache, system paths).
	Library string `yaml:"library"`
	// IntraOpThreads and InterOpThreads size ONNX Runtime's thread pools;
	// 0 means ONNX Runtime's default.
	IntraOpThreads int `yaml:"intra_op_threads"`
	InterOpThreads int `yaml:"inter_op_threads"`
}

// Server configures the HTTP server.
type Server struct {
	ReadTimeout     Duration `yaml:"read_timeout"`
	WriteTimeout    Duration `yaml:"write_timeout"`
	IdleTimeout     Duration `yaml:"idle_timeout"`
	ShutdownTimeout Duration `yaml:"shutdown_timeout"`
	// MaxBodyBytes limits request bodies other than model uploads.
	MaxBodyBytes Size `yaml:"max_body_bytes"`
	// MaxBodyMemory limits the request bodies held in memory at once, all
	// requests together; over it a request is answered 503 with
	// Retry-After.
	MaxBodyMemory Size `yaml:"max_body_memory"`
	// RequestTimeout is a request's deadline, feature lookups included; the
	// header X-Request-Timeout may ask for less, or more up to
	// MaxRequestTimeout.
	RequestTimeout    Duration `yaml:"request_timeout"`
	MaxRequestTimeout Duration `yaml:"max_request_timeout"`
	// DrainDelay is how long a stopping gateway answers not ready before it
	// stops accepting connections (time for a load balancer to notice).
	DrainDelay Duration `yaml:"drain_delay"`
	// TLS serves HTTPS when both files are set.
	TLS TLSFiles `yaml:"tls"`
}

// TLSFiles name a certificate and its key, PEM-encoded.
type TLSFiles struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// ClientTLS configures TLS to a server mlgate connects to.
type ClientTLS struct {
	Enabled bool `yaml:"enabled"`
	// CAFile holds the PEM certificates that sign the server's; empty: the
	// system's.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are a client certificate, when the server asks.
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// Limits bound what one request may ask for; over a bound is a 413 or 400
// that names it.
type Limits struct {
	// MaxRows bounds the rows of a request: entity rows of a prediction,
	// the batch of a tensor, rows written to a feature view.
	MaxRows int `yaml:"max_rows"`
	// MaxTensorElements bounds the elements of one input tensor.
	MaxTensorElements int `yaml:"max_tensor_elements"`
	// MaxStringBytes bounds one string value (BYTES elements, entity keys,
	// string features).
	MaxStringBytes int `yaml:"max_string_bytes"`
}

// Breaker configures the circuit breaker in front of each online store and
// each shadow target. It opens on Failures failures in a row, or when at
// least FailureRatio of the calls judged within the last Window failed, once
// MinRequests calls were judged in it.
type Breaker struct {
	// Failures in a row open the breaker.
	Failures int `yaml:"failures"`
	// FailureRatio is the share of failed calls in Window that opens the
	// breaker, from 0 (exclusive) to 1.
	FailureRatio float64 `yaml:"failure_ratio"`
	// MinRequests is how many calls Window must hold before FailureRatio
	// is judged.
	MinRequests int `yaml:"min_requests"`
	// Window is the span, rolling, over which FailureRatio is judged; it
	// must be longer than online_store.timeout and
	// online_store.write_timeout, or slow failures would fall out of it
	// before they count.
	Window Duration `yaml:"window"`
	// OpenFor is how long an open breaker refuses calls before it lets one
	// through to probe.
	OpenFor Duration `yaml:"open_for"`
}

// Telemetry configures traces.
type Telemetry struct {
	// OTLPEndpoint receives traces over OTLP/HTTP (host:port, or a URL);
	// empty: traces are not exported.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// SampleRatio is the share of traces started here that are recorded;
	// a caller's sampled trace context is always followed.
	SampleRatio float64 `yaml:"sample_ratio"`
	ServiceName string  `yaml:"service_name"`
}

// Auth configures API-key authentication.
type Auth struct {
	Keys []APIKey `yaml:"keys"`
	// KeysFile is a YAML file holding more keys, as a list in the form of
	// keys.
	KeysFile string `yaml:"keys_file"`
	// RoleLimits set the request rate of keys by role; a key's own rate
	// wins, else the highest of the roles it lists, else it is unlimited.
	// With no keys configured, the anonymous caller has the admin role's
	// limit. Over its limit a request is refused with 429 and Retry-After.
	RoleLimits []RoleLimit `yaml:"role_limits"`
}

// RoleLimit is the request rate of keys holding a role.
type RoleLimit struct {
	Role  string  `yaml:"role"`
	Rate  float64 `yaml:"rate"`  // requests per second; 0: unlimited
	Burst int     `yaml:"burst"` // requests at once
}

// APIKey is one accepted API key, stored as its SHA-256 digest.
type APIKey struct {
	Name   string   `yaml:"name"`   // unique label, required
	SHA256 string   `yaml:"sha256"` // 64 lowercase hex characters
	Roles  []string `yaml:"roles"`  // at least one of validRoles
	// Rate and Burst limit the key's requests (per second, at once); 0
	// leaves it to its roles' limits.
	Rate  float64 `yaml:"rate"`
	Burst int     `yaml:"burst"`
}

var (
	validLevels  = []string{"debug", "info", "warn", "error"}
	validFormats = []string{"text", "json"}
	validRoles   = []string{"predict", "data-scientist", "sre", "admin"}
	validStores  = []string{"embedded", "redis", "cassandra"}
	validPlanes  = []string{"embedded", "postgres"}
	// validStatuses are the registry's validation statuses.
	validStatuses = []string{"PENDING", "PASSED", "FAILED"}
)

// RedisEnabled reports whether a Redis online store is configured.
func (o *OnlineStore) RedisEnabled() bool {
	return o.Redis.Addr != "" || len(o.Redis.ClusterAddrs) > 0
}

// ControlPlane chooses the control plane's store.
type ControlPlane struct {
	// Store is embedded (bbolt files in data_dir, for one process) or
	// postgres (one PostgreSQL database, shared by every replica).
	Store    string   `yaml:"store"`
	Postgres Postgres `yaml:"postgres"`
	// ReplicaID names this replica in the fleet: in the inference tables'
	// file names, the fleet's figures and the leader election. Default: the
	// host name (a Kubernetes pod's name). Letters, digits, '.', '-' and
	// '_', starting with a letter or digit, at most 63 characters.
	ReplicaID string `yaml:"replica_id"`
}

// Postgres is the control plane's database.
type Postgres struct {
	// DSN is a postgres:// URL or key=value connection string; it may hold
	// a password, so keep it in the environment
	// (MLGATE_CONTROL_PLANE_POSTGRES_DSN) or a Secret.
	DSN string `yaml:"dsn"`
}

// TablesDir is the inference tables' directory: inference_tables.dir, or
// <data_dir>/inference.
func (c *Config) TablesDir() string {
	if c.Tables.Dir != "" {
		return c.Tables.Dir
	}
	return filepath.Join(c.DataDir, "inference")
}

// Fleet reports whether the control plane is shared by a fleet.
func (c ControlPlane) Fleet() bool { return c.Store == "postgres" }

// Defaults returns the built-in configuration.
func Defaults() Config {
	return Config{
		Listen:  "127.0.0.1:8080",
		DataDir: "./mlgate-data",
		Log:     Log{Level: "info", Format: "text"},
		Registry: Registry{
			MaxModelBytes:    256 * MiB,
			ProtectedAliases: map[string]string{"champion": "PASSED"},
			MLflow:           MLflow{Models: []string{}, Poll: Duration(5 * time.Second)},
		},
		ONNX: ONNX{IntraOpThreads: 1, InterOpThreads: 1},
		Server: Server{
			ReadTimeout:       Duration(30 * time.Second),
			WriteTimeout:      Duration(30 * time.Second),
			IdleTimeout:       Duration(120 * time.Second),
			ShutdownTimeout:   Duration(15 * time.Second),
			MaxBodyBytes:      16 * MiB,
			MaxBodyMemory:     256 * MiB,
			RequestTimeout:    Duration(10 * time.Second),
			MaxRequestTimeout: Duration(60 * time.Second),
		},
		Auth:         Auth{RoleLimits: []RoleLimit{}},
		ControlPlane: ControlPlane{Store: "embedded"},
		Limits:       Limits{MaxRows: 10000, MaxTensorElements: 10_000_000, MaxStringBytes: 64 << 10},
		Telemetry:    Telemetry{SampleRatio: 1, ServiceName: "mlgate"},
		Tables: Tables{
			Enabled: true, MaxFileBytes: 64 * MiB, MaxFileAge: Duration(time.Minute),
			FlushInterval: Duration(time.Second), QueueSize: 10000, Spill: true,
		},
		OnlineStore: OnlineStore{
			Default:      "embedded",
			CacheEntries: 100000,
			Timeout:      Duration(500 * time.Millisecond),
			WriteTimeout: Duration(5 * time.Second),
			Breaker:      Breaker{Failures: 5, FailureRatio: 0.5, MinRequests: 10, Window: Duration(10 * time.Second), OpenFor: Duration(time.Second)},
			Redis:        Redis{KeyPrefix: "mlgate", ClusterAddrs: []string{}},
			Cassandra:    Cassandra{Hosts: []string{}, Keyspace: "mlgate", ReplicationFactor: 1, Consistency: "LOCAL_ONE", Timeout: Duration(2 * time.Second)},
		},
	}
}

// Validate checks every field and returns all problems found, each naming
// its key. It enforces no listen-address or authentication policy.
func (c *Config) Validate() error {
	var errs []error
	fail := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("config key %s: %s", key, fmt.Sprintf(format, args...)))
	}
	check := func(key string, ok bool, format string, args ...any) {
		if !ok {
			fail(key, format, args...)
		}
	}
	oneOf := func(key, got string, valid []string) {
		check(key, slices.Contains(valid, got), "must be one of %s, got %q", strings.Join(valid, ", "), got)
	}

	if err := checkListen(c.Listen); err != nil {
		fail("listen", "%v", err)
	}
	if c.GRPC.Listen != "" {
		if err := checkListen(c.GRPC.Listen); err != nil {
			fail("grpc.listen", "%v", err)
		}
	}
	check("data_dir", c.DataDir != "", "must not be empty")
	oneOf("log.level", c.Log.Level, validLevels)
	oneOf("log.format", c.Log.Format, validFormats)
	check("registry.max_model_bytes", c.Registry.MaxModelBytes > 0, "must be greater than 0")
	for _, alias := range slices.Sorted(maps.Keys(c.Registry.ProtectedAliases)) {
		key := "registry.protected_aliases." + alias
		check(key, validAlias(alias), "%q is not an alias name: want 1 to 64 letters, digits, '_' or '-', starting with a letter", alias)
		oneOf(key, c.Registry.ProtectedAliases[alias], validStatuses)
	}
	if ml := c.Registry.MLflow; ml.TrackingURI != "" {
		u, err := url.Parse(ml.TrackingURI)
		check("registry.mlflow.tracking_uri", err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "",
			"%q is not the http(s)://host:port of an MLflow tracking server", ml.TrackingURI)
		check("registry.mlflow.poll", ml.Poll > 0, "must be greater than 0, got %s", time.Duration(ml.Poll))
		for i, m := range ml.Models {
			check(fmt.Sprintf("registry.mlflow.models[%d]", i), m != "", "must not be empty")
		}
	}
	check("onnx.intra_op_threads", c.ONNX.IntraOpThreads >= 0, "must not be negative, got %d", c.ONNX.IntraOpThreads)
	check("onnx.inter_op_threads", c.ONNX.InterOpThreads >= 0, "must not be negative, got %d", c.ONNX.InterOpThreads)
	for _, t := range []struct {
		key string
		d   Duration
	}{
		{"server.read_timeout", c.Server.ReadTimeout},
		{"server.write_timeout", c.Server.WriteTimeout},
		{"server.idle_timeout", c.Server.IdleTimeout},
		{"server.shutdown_timeout", c.Server.ShutdownTimeout},
	} {
		check(t.key, t.d > 0, "must be greater than 0, got %s", t.d)
	}
	check("server.max_body_bytes", c.Server.MaxBodyBytes > 0, "must be greater than 0")
	check("server.max_body_memory", c.Server.MaxBodyMemory >= c.Server.MaxBodyBytes, "must be at least server.max_body_bytes")

	oneOf("control_plane.store", c.ControlPlane.Store, validPlanes)
	check("control_plane.postgres.dsn", !c.ControlPlane.Fleet() || strings.TrimSpace(c.ControlPlane.Postgres.DSN) != "", "is required when control_plane.store is postgres")
	check("control_plane.replica_id", c.ControlPlane.ReplicaID == "" || validReplicaID(c.ControlPlane.ReplicaID),
		"want letters, digits, '.', '-' and '_', starting with a letter or digit, at most 63 characters, got %q", c.ControlPlane.ReplicaID)
	check("online_store.default", !c.ControlPlane.Fleet() || c.OnlineStore.Default != "embedded",
		"is embedded, which one replica alone can read; with control_plane.store postgres, set it to redis or cassandra so that every replica serves the same features")
	oneOf("online_store.default", c.OnlineStore.Default, validStores)
	check("online_store.cache_entries", c.OnlineStore.CacheEntries >= 0, "must not be negative, got %d", c.OnlineStore.CacheEntries)
	check("online_store.redis", c.OnlineStore.Redis.Addr == "" || len(c.OnlineStore.Redis.ClusterAddrs) == 0, "set addr (a standalone server) or cluster_addrs (a cluster), not both")
	check("online_store.default", c.OnlineStore.Default != "redis" || c.OnlineStore.RedisEnabled(), "is redis, but online_store.redis.addr is not set")
	check("online_store.default", c.OnlineStore.Default != "cassandra" || len(c.OnlineStore.Cassandra.Hosts) > 0, "is cassandra, but online_store.cassandra.hosts is not set")
	check("online_store.cassandra.replication_factor", c.OnlineStore.Cassandra.ReplicationFactor > 0, "must be at least 1")
	check("online_store.cassandra.timeout", c.OnlineStore.Cassandra.Timeout > 0, "must be greater than 0")

	check("server.request_timeout", c.Server.RequestTimeout > 0, "must be greater than 0")
	check("server.drain_delay", c.Server.DrainDelay >= 0 && c.Server.DrainDelay < c.Server.ShutdownTimeout, "must be at least 0 and less than server.shutdown_timeout")
	check("server.max_request_timeout", c.Server.MaxRequestTimeout >= c.Server.RequestTimeout, "must be at least server.request_timeout")
	check("server.tls", (c.Server.TLS.CertFile == "") == (c.Server.TLS.KeyFile == ""), "set both cert_file and key_file, or neither")
	check("limits.max_rows", c.Limits.MaxRows > 0, "must be greater than 0")
	check("limits.max_tensor_elements", c.Limits.MaxTensorElements > 0, "must be greater than 0")
	check("limits.max_string_bytes", c.Limits.MaxStringBytes > 0, "must be greater than 0")
	check("online_store.breaker.failures", c.OnlineStore.Breaker.Failures > 0, "must be greater than 0")
	check("online_store.breaker.open_for", c.OnlineStore.Breaker.OpenFor > 0, "must be greater than 0")
	check("online_store.timeout", c.OnlineStore.Timeout > 0, "must be greater than 0, got %s", c.OnlineStore.Timeout)
	check("online_store.write_timeout", c.OnlineStore.WriteTimeout > 0, "must be greater than 0, got %s", c.OnlineStore.WriteTimeout)
	b := c.OnlineStore.Breaker
	check("online_store.breaker.failure_ratio", b.FailureRatio > 0 && b.FailureRatio <= 1, "must be greater than 0 and at most 1, got %v", b.FailureRatio)
	check("online_store.breaker.min_requests", b.MinRequests > 0, "must be greater than 0, got %d", b.MinRequests)
	check("online_store.breaker.window", b.Window > c.OnlineStore.Timeout && b.Window > c.OnlineStore.WriteTimeout,
		"must be longer than online_store.timeout (%s) and online_store.write_timeout (%s), got %s", c.OnlineStore.Timeout, c.OnlineStore.WriteTimeout, b.Window)
	check("telemetry.sample_ratio", c.Telemetry.SampleRatio >= 0 && c.Telemetry.SampleRatio <= 1, "must be from 0 to 1")
	limited := make(map[string]int) // role -> index of its limit
	for i, l := range c.Auth.RoleLimits {
		key := fmt.Sprintf("auth.role_limits[%d]", i)
		oneOf(key+".role", l.Role, validRoles)
		if j, dup := limited[l.Role]; dup {
			fail(key+".role", "duplicate role %q (also auth.role_limits[%d])", l.Role, j)
		}
		limited[l.Role] = i
		check(key+".rate", l.Rate >= 0, "must not be negative")
		check(key+".burst", l.Burst >= 0, "must not be negative")
	}

	check("inference_tables.max_file_bytes", c.Tables.MaxFileBytes > 0, "must be greater than 0")
	check("inference_tables.max_file_age", c.Tables.MaxFileAge > 0, "must be greater than 0")
	check("inference_tables.flush_interval", c.Tables.FlushInterval > 0, "must be greater than 0")
	check("inference_tables.queue_size", c.Tables.QueueSize > 0, "must be greater than 0")

	names := make(map[string]string) // API key name -> key of its entry
	for i, k := range c.Auth.Keys {
		checkKey(fmt.Sprintf("auth.keys[%d]", i), k, names, fail)
	}
	return errors.Join(errs...)
}

// checkKey checks the API key entry k, whose config key is key, and adds
// its name to names (name -> config key of the entry that has it). fail
// reports a problem with a sub-key.
func checkKey(key string, k APIKey, names map[string]string, fail func(key, format string, args ...any)) {
	if other, dup := names[k.Name]; dup {
		fail(key+".name", "duplicate name %q (also %s)", k.Name, other)
	} else if k.Name == "" {
		fail(key+".name", "must not be empty")
	} else {
		names[k.Name] = key
	}
	if !isLowerHex(k.SHA256, 64) {
		fail(key+".sha256", "must be 64 hex characters (lowercase SHA-256 of the key)")
	}
	if len(k.Roles) == 0 {
		fail(key+".roles", "must list at least one role")
	}
	for j, r := range k.Roles {
		if !slices.Contains(validRoles, r) {
			fail(fmt.Sprintf("%s.roles[%d]", key, j), "must be one of %s, got %q", strings.Join(validRoles, ", "), r)
		}
	}
	if k.Rate < 0 {
		fail(key+".rate", "must not be negative")
	}
	if k.Burst < 0 {
		fail(key+".burst", "must not be negative")
	}
}

// validReplicaID reports whether id can name a replica in file names and
// the fleet's tables.
// validAlias reports whether alias follows the registry's rule for alias
// names: 1 to 64 letters, digits, '_' or '-', starting with a letter.
func validAlias(alias string) bool {
	if alias == "" || len(alias) > 64 {
		return false
	}
	for i, r := range alias {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (i == 0 || !(r >= '0' && r <= '9' || r == '_' || r == '-')) {
			return false
		}
	}
	return true
}

func validReplicaID(id string) bool {
	if len(id) > 63 {
		return false
	}
	for i, r := range id {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || r != '.' && r != '-' && r != '_') {
			return false
		}
	}
	return true
}

// checkListen checks that addr is host:port with a numeric port.
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("port %q must be a number from 0 to 65535", port)
	}
	return nil
}

// isLowerHex reports whether s is exactly n lowercase hexadecimal digits.
func isLowerHex(s string, n int) bool {
	return len(s) == n && strings.IndexFunc(s, func(r rune) bool {
		return (r < '0' || r > '9') && (r < 'a' || r > 'f')
	}) < 0
}

// PublicListen returns the first of listen and grpc.listen (its key and
// address) whose host is not a loopback address (127.0.0.0/8, ::1) or
// "localhost", if one is not. An empty host (all interfaces) or an
// unparsable address is not loopback.
func (c *Config) PublicListen() (key, addr string, public bool) {
	if !loopback(c.Listen) {
		return "listen", c.Listen, true
	}
	if c.GRPC.Listen != "" && !loopback(c.GRPC.Listen) {
		return "grpc.listen", c.GRPC.Listen, true
	}
	return "", "", false
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
