package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const (
	sumA = "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"
	sumB = "fcde2b2edba56bf408601fb721fe9b5c338d10ee429ea04fae5511b68fbf8fb9"
)

// writeFile writes content to a temporary mlgate.yaml and returns its path.
func writeFile(t testing.TB, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mlgate.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// load runs Load onto Defaults with an optional file body.
func load(t *testing.T, file string, env ...string) (Config, error) {
	t.Helper()
	path := ""
	if file != "" {
		path = writeFile(t, file)
	}
	cfg := Defaults()
	err := Load(path, env, &cfg)
	return cfg, err
}

func TestLoadDefaults(t *testing.T) {
	cfg, err := load(t, "")
	if err != nil {
		t.Fatal(err)
	}
	if want := Defaults(); !reflect.DeepEqual(cfg, want) {
		t.Errorf("got %+v, want %+v", cfg, want)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.Registry.MaxModelBytes != 256*MiB ||
		time.Duration(cfg.Server.IdleTimeout) != 120*time.Second {
		t.Errorf("unexpected defaults %+v", cfg)
	}
}

func TestLoadFullFile(t *testing.T) {
	cfg, err := load(t, `
listen: "0.0.0.0:9090"
data_dir: /var/lib/mlgate
log:
  level: debug
  format: json
registry:
  max_model_bytes: 1GiB
onnx:
  library: /opt/onnx/libonnxruntime.so
  intra_op_threads: 4
  inter_op_threads: 0
server:
  read_timeout: 5s
  write_timeout: 1m
  idle_timeout: 2m30s
  shutdown_timeout: 24h
  max_body_bytes: 1000000
auth:
  keys:
    - name: ci
      sha256: `+sumA+`
      roles: [predict]
    - name: ops
      sha256: `+sumB+`
      roles:
        - sre
        - admin
online_store:
  default: redis
  cache_entries: 5000
  redis:
    addr: 127.0.0.1:6379
    db: 2
  cassandra:
    hosts: [10.0.0.1:9042, 10.0.0.2:9042]
    keyspace: features
    consistency: LOCAL_QUORUM
`)
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Listen:   "0.0.0.0:9090",
		DataDir:  "/var/lib/mlgate",
		Log:      Log{Level: "debug", Format: "json"},
		Registry: Registry{MaxModelBytes: GiB},
		ONNX:     ONNX{Library: "/opt/onnx/libonnxruntime.so", IntraOpThreads: 4},
		Server: Server{
			ReadTimeout:     Duration(5 * time.Second),
			WriteTimeout:    Duration(time.Minute),
			IdleTimeout:     Duration(150 * time.Second),
			ShutdownTimeout: Duration(24 * time.Hour),
			MaxBodyBytes:    MB,
		},
		Auth: Auth{Keys: []APIKey{
			{Name: "ci", SHA256: sumA, Roles: []string{"predict"}},
			{Name: "ops", SHA256: sumB, Roles: []string{"sre", "admin"}},
		}},
		OnlineStore: OnlineStore{
			Default:      "redis",
			CacheEntries: 5000,
			Redis:        Redis{Addr: "127.0.0.1:6379", DB: 2, KeyPrefix: "mlgate", ClusterAddrs: []string{}},
			Cassandra: Cassandra{Hosts: []string{"10.0.0.1:9042", "10.0.0.2:9042"}, Keyspace: "features", ReplicationFactor: 1,
				Consistency: "LOCAL_QUORUM", Timeout: Duration(2 * time.Second)},
		},
		Tables:       Defaults().Tables,
		Limits:       Defaults().Limits,
		Telemetry:    Defaults().Telemetry,
		ControlPlane: Defaults().ControlPlane,
	}
	d := Defaults()
	want.Server.RequestTimeout, want.Server.MaxRequestTimeout = d.Server.RequestTimeout, d.Server.MaxRequestTimeout
	want.Server.MaxBodyMemory = d.Server.MaxBodyMemory
	want.Auth.RoleLimits = d.Auth.RoleLimits
	want.Registry.ProtectedAliases, want.Registry.MLflow = d.Registry.ProtectedAliases, d.Registry.MLflow
	want.OnlineStore.Breaker = d.OnlineStore.Breaker
	want.OnlineStore.Timeout, want.OnlineStore.WriteTimeout = d.OnlineStore.Timeout, d.OnlineStore.WriteTimeout
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("got  %+v\nwant %+v", cfg, want)
	}
}

func TestLoadEmptyAndNull(t *testing.T) {
	for _, file := range []string{"\n", "# only a comment\n", "~\n", "log:\n", "listen: null\nauth:\n  keys:\n"} {
		cfg, err := load(t, file)
		if err != nil {
			t.Errorf("%q: %v", file, err)
		} else if !reflect.DeepEqual(cfg, Defaults()) {
			t.Errorf("%q: got %+v, want defaults", file, cfg)
		}
	}
}

func TestLoadAnchorsAndAliases(t *testing.T) {
	cfg, err := load(t, `
server:
  read_timeout: &t 10s
  write_timeout: *t
auth:
  keys:
    - name: a
      sha256: `+sumA+`
      roles: &roles [predict, sre]
    - name: b
      sha256: `+sumB+`
      roles: *roles
`)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Server.WriteTimeout != Duration(10*time.Second) || !slices.Equal(cfg.Auth.Keys[1].Roles, []string{"predict", "sre"}) {
		t.Errorf("aliases not resolved: %+v", cfg)
	}
}

func TestLoadEnv(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		env   []string
		check func(Config) bool
	}{
		{
			name:  "env wins over file",
			file:  "listen: 127.0.0.1:1\nlog:\n  level: warn\n",
			env:   []string{"MLGATE_LISTEN=127.0.0.1:2", "PATH=/bin"},
			check: func(c Config) bool { return c.Listen == "127.0.0.1:2" && c.Log.Level == "warn" },
		},
		{
			name: "every kind",
			env: []string{
				"MLGATE_DATA_DIR=/data",
				"MLGATE_REGISTRY_MAX_MODEL_BYTES=2GB",
				"MLGATE_ONNX_INTRA_OP_THREADS=8",
				"MLGATE_SERVER_SHUTDOWN_TIMEOUT=1m",
			},
			check: func(c Config) bool {
				return c.DataDir == "/data" && c.Registry.MaxModelBytes == 2*GB &&
					c.ONNX.IntraOpThreads == 8 && c.Server.ShutdownTimeout == Duration(time.Minute)
			},
		},
		{
			name:  "last entry wins",
			env:   []string{"MLGATE_LOG_LEVEL=debug", "MLGATE_LOG_LEVEL=error"},
			check: func(c Config) bool { return c.Log.Level == "error" },
		},
		{
			name:  "client variables are ignored",
			env:   []string{"MLGATE_SERVER=http://x", "MLGATE_API_KEY=secret"},
			check: func(c Config) bool { return reflect.DeepEqual(c, Defaults()) },
		},
		{
			name:  "not our prefix",
			env:   []string{"mlgate_listen=bad", "MLGATEX=1", "NOEQUALS"},
			check: func(c Config) bool { return reflect.DeepEqual(c, Defaults()) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := load(t, tt.file, tt.env...)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(cfg) {
				t.Errorf("unexpected config %+v", cfg)
			}
		})
	}
}

// kinds has one field of every supported kind, for loader tests that do
// not depend on Config.
type kinds struct {
	S     string        `yaml:"s"`
	B     bool          `yaml:"b"`
	I     int           `yaml:"i"`
	I64   int64         `yaml:"i64"`
	F     float64       `yaml:"f"`
	D     Duration      `yaml:"d"`
	Z     Size          `yaml:"z"`
	List  []string      `yaml:"list"`
	Ints  []int         `yaml:"ints"`
	Sizes []Size        `yaml:"sizes"`
	Sub   kindsSub      `yaml:"sub"`
	Items []kindsSub    `yaml:"items"`
	Skip  chan struct{} `yaml:"-"`
	NoTag map[int]int
	priv  int `yaml:"priv"` // unexported, so not configurable
}

type kindsSub struct {
	Name string `yaml:"name"`
	N    int    `yaml:"n"`
}

func TestLoadKinds(t *testing.T) {
	path := writeFile(t, `
s: hello
b: true
i: -3
i64: 9000000000
f: 1.5
d: 90s
z: 4KiB
list: [a, b]
ints: [1, 2]
sizes: [1KB, 2]
sub: {name: x, n: 1}
items:
  - {name: p}
  - {n: 2}
`)
	var got kinds
	if err := Load(path, []string{"MLGATE_LIST=c, d ,e", "MLGATE_INTS=", "MLGATE_SUB_N=7", "MLGATE_B=false"}, &got); err != nil {
		t.Fatal(err)
	}
	want := kinds{
		S: "hello", I: -3, I64: 9000000000, F: 1.5,
		D: Duration(90 * time.Second), Z: 4 * KiB,
		List: []string{"c", "d", "e"}, Ints: []int{}, Sizes: []Size{KB, 2},
		Sub:   kindsSub{Name: "x", N: 7},
		Items: []kindsSub{{Name: "p"}, {N: 2}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string // substrings of the error
	}{
		{"unknown top-level key", "s: x\nss: y\n", []string{`mlgate.yaml: unknown key "ss" (line 2)`}},
		{"unknown nested key", "s: a\nsub:\n  name: b\n  nmae: c\n", []string{`mlgate.yaml: unknown key "sub.nmae" (line 4)`}},
		{"unknown key in list item", "items:\n  - name: a\n  - nmae: b\n", []string{`mlgate.yaml: unknown key "items[1].nmae" (line 3)`}},
		{"untagged field", "NoTag: 1\n", []string{`unknown key "NoTag"`}},
		{"dash-tagged field", "Skip: 1\n", []string{`unknown key "Skip"`}},
		{"unexported field", "priv: 1\n", []string{`unknown key "priv"`}},
		{"duplicate key", "s: a\ns: b\n", []string{`duplicate key "s" (line 2)`}},
		{"bad string shape", "s: [a]\n", []string{"config key s (line 1): expected a single value, got a sequence"}},
		{"bad bool", "b: maybe\n", []string{"config key b (line 1)", `invalid boolean "maybe"`}},
		{"bad int", "sub:\n  n: 1.5\n", []string{"config key sub.n (line 2)", `invalid integer "1.5"`}},
		{"int overflow", "i64: 99999999999999999999\n", []string{"config key i64", "out of range"}},
		{"bad float", "f: fast\n", []string{"config key f", `invalid number "fast"`}},
		{"infinite float", "f: inf\n", []string{"config key f", "must be finite"}},
		{"bad duration", "d: 30\n", []string{"config key d (line 1)", `invalid duration "30"`}},
		{"bad size", "z: 12QB\n", []string{"config key z (line 1)", `invalid size "12QB"`, `unknown unit "QB"`}},
		{"negative size", "z: -1\n", []string{"config key z", "must not be negative"}},
		{"bad list item", "ints: [1, x]\n", []string{"config key ints[1] (line 1)", `invalid integer "x"`}},
		{"list given a scalar", "list: a\n", []string{"config key list (line 1): expected a sequence"}},
		{"struct given a scalar", "sub: 3\n", []string{"config key sub (line 1): expected a mapping"}},
		{"bad field in list item", "items:\n  - n: z\n", []string{"config key items[0].n (line 2)"}},
		{"top level not a mapping", "- a\n", []string{"top level (line 1): expected a mapping, got a sequence"}},
		{"non-scalar key", "? [a]\n: b\n", []string{"expected a key name, got a sequence (line 1)"}},
		{"two documents", "s: a\n---\ns: b\n", []string{"more than one YAML document"}},
		{"syntax error", "s: [\n", []string{"mlgate.yaml", "yaml:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var k kinds
			err := Load(writeFile(t, tt.file), nil, &k)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadConfigFileErrors(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"log:\n  level: info\nregistry:\n  max_model_byte: 1\n", `mlgate.yaml: unknown key "registry.max_model_byte" (line 4)`},
		{"auth:\n  keys:\n    - name: a\n    - nmae: b\n", `mlgate.yaml: unknown key "auth.keys[1].nmae" (line 4)`},
		{"registry:\n  max_model_bytes: 12QB\n", `mlgate.yaml: config key registry.max_model_bytes (line 2): invalid size "12QB": unknown unit "QB"`},
		{"onnx:\n  intra_op_threads: -1\n", "config key onnx.intra_op_threads: must not be negative, got -1"},
	}
	for _, tt := range tests {
		_, err := load(t, tt.file)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want error containing %q", tt.file, err, tt.want)
		}
	}
}

func TestLoadMissingFile(t *testing.T) {
	cfg := Defaults()
	err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil, &cfg)
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("got %v, want an error naming the file", err)
	}
}

func TestLoadEnvErrors(t *testing.T) {
	tests := []struct {
		env  string
		want string
	}{
		{"MLGATE_LISTN=x", "environment variable MLGATE_LISTN: matches no config key"},
		{"MLGATE_AUTH_KEYS=x", "environment variable MLGATE_AUTH_KEYS: matches no config key"},
		{"MLGATE_=x", "environment variable MLGATE_: matches no config key"},
		{"MLGATE_REGISTRY_MAX_MODEL_BYTES=x", `environment variable MLGATE_REGISTRY_MAX_MODEL_BYTES (registry.max_model_bytes): invalid size "x"`},
		{"MLGATE_ONNX_INTER_OP_THREADS=two", `environment variable MLGATE_ONNX_INTER_OP_THREADS (onnx.inter_op_threads): invalid integer "two"`},
		{"MLGATE_SERVER_READ_TIMEOUT=soon", `environment variable MLGATE_SERVER_READ_TIMEOUT (server.read_timeout): invalid duration "soon"`},
		{"MLGATE_LOG_LEVEL=loud", `config key log.level: must be one of debug, info, warn, error, got "loud"`},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			_, err := load(t, "", tt.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want error containing %q", err, tt.want)
			}
		})
	}

	// Kinds the Config struct lacks.
	for env, want := range map[string]string{
		"MLGATE_B=yes":     `environment variable MLGATE_B (b): invalid boolean "yes": invalid syntax`,
		"MLGATE_INTS=1,,3": `environment variable MLGATE_INTS (ints): item 1: invalid integer "": invalid syntax`,
		"MLGATE_F=1e999":   `environment variable MLGATE_F (f): invalid number "1e999": value out of range`,
	} {
		var k kinds
		if err := Load("", []string{env}, &k); err == nil || err.Error() != want {
			t.Errorf("%s: got %v, want %q", env, err, want)
		}
	}
}

func TestLoadBadDestination(t *testing.T) {
	type withPointer struct {
		P *int `yaml:"p"`
	}
	type withBadItem struct {
		Items []struct {
			M map[int]int `yaml:"m"`
		} `yaml:"items"`
	}
	type dupEnv struct {
		AB struct {
			C string `yaml:"c"`
		} `yaml:"a_b"`
		A struct {
			BC string `yaml:"b_c"`
		} `yaml:"a"`
	}
	type clientClash struct {
		Server string `yaml:"server"`
	}
	var n int
	tests := []struct {
		name string
		dst  any
		want string
	}{
		{"nil", nil, "non-nil pointer to a struct"},
		{"not a pointer", Config{}, "non-nil pointer to a struct"},
		{"pointer to non-struct", &n, "non-nil pointer to a struct"},
		{"pointer field", &withPointer{}, "key p has unsupported type *int"},
		{"bad type in list item", &withBadItem{}, "key items[].m has unsupported type map[int]int"},
		{"duplicate env name", &dupEnv{}, "keys a_b.c and a.b_c share the environment variable MLGATE_A_B_C"},
		{"client env name", &clientClash{}, "key server maps to MLGATE_SERVER, which is reserved for the client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Load("", nil, tt.dst)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func TestEnvKeys(t *testing.T) {
	keys := EnvKeys(&Config{})
	for _, want := range []string{
		"MLGATE_LISTEN", "MLGATE_DATA_DIR", "MLGATE_REGISTRY_MAX_MODEL_BYTES",
		"MLGATE_ONNX_INTRA_OP_THREADS", "MLGATE_SERVER_MAX_BODY_BYTES", "MLGATE_LOG_LEVEL",
	} {
		if !slices.Contains(keys, want) {
			t.Errorf("EnvKeys lacks %s: %v", want, keys)
		}
	}
	if !slices.IsSorted(keys) {
		t.Errorf("EnvKeys not sorted: %v", keys)
	}
	for _, k := range keys {
		if strings.HasPrefix(k, "MLGATE_AUTH") && k != "MLGATE_AUTH_KEYS_FILE" || slices.Contains(ClientEnv, k) {
			t.Errorf("EnvKeys has %s", k)
		}
	}
	if got := EnvKeys(Config{}); !slices.Equal(got, keys) {
		t.Errorf("EnvKeys of a value differs: %v", got)
	}
	// Every listed variable is accepted by Load.
	for _, k := range keys {
		cfg := Defaults()
		if err := Load("", []string{k + "=x"}, &cfg); err != nil && strings.Contains(err.Error(), "matches no config key") {
			t.Errorf("%s rejected: %v", k, err)
		}
	}
}

func TestValidate(t *testing.T) {
	key := func(name, sum string, roles ...string) APIKey { return APIKey{Name: name, SHA256: sum, Roles: roles} }
	tests := []struct {
		name   string
		modify func(*Config)
		want   []string // substrings; none means valid
	}{
		{"defaults", func(*Config) {}, nil},
		{"listen all interfaces", func(c *Config) { c.Listen = ":8080" }, nil},
		{"listen ipv6", func(c *Config) { c.Listen = "[::1]:0" }, nil},
		{"two good keys", func(c *Config) {
			c.Auth.Keys = []APIKey{key("a", sumA, "predict"), key("b", sumB, "data-scientist", "sre", "admin")}
		}, nil},
		{"listen without port", func(c *Config) { c.Listen = "localhost" }, []string{"config key listen: "}},
		{"mlflow mirror", func(c *Config) { c.Registry.MLflow.TrackingURI = "http://mlflow:5000" }, nil},
		{"mlflow not http", func(c *Config) { c.Registry.MLflow.TrackingURI = "file:///tmp/mlruns" },
			[]string{`config key registry.mlflow.tracking_uri: "file:///tmp/mlruns" is not the http(s)://host:port of an MLflow tracking server`}},
		{"mlflow poll", func(c *Config) { c.Registry.MLflow.TrackingURI, c.Registry.MLflow.Poll = "http://mlflow:5000", 0 },
			[]string{"config key registry.mlflow.poll: must be greater than 0"}},
		{"mlflow empty model", func(c *Config) {
			c.Registry.MLflow.TrackingURI, c.Registry.MLflow.Models = "http://mlflow:5000", []string{""}
		},
			[]string{"config key registry.mlflow.models[0]: must not be empty"}},
		{"listen named port", func(c *Config) { c.Listen = "localhost:http" }, []string{`config key listen: port "http" must be a number`}},
		{"listen port too big", func(c *Config) { c.Listen = "localhost:70000" }, []string{"config key listen: "}},
		{"grpc listen", func(c *Config) { c.GRPC.Listen = "127.0.0.1:9000" }, nil},
		{"grpc listen without port", func(c *Config) { c.GRPC.Listen = "localhost" }, []string{"config key grpc.listen: "}},
		{"grpc listen named port", func(c *Config) { c.GRPC.Listen = "localhost:grpc" }, []string{`config key grpc.listen: port "grpc" must be a number`}},
		{"empty data dir", func(c *Config) { c.DataDir = "" }, []string{"config key data_dir: must not be empty"}},
		{"postgres control plane", func(c *Config) {
			c.ControlPlane = ControlPlane{Store: "postgres", Postgres: Postgres{DSN: "postgres://db/mlgate"}, ReplicaID: "mlgate-7d9f-x2"}
			c.OnlineStore.Default, c.OnlineStore.Redis.Addr = "redis", "127.0.0.1:6379"
		}, nil},
		{"unknown control plane", func(c *Config) { c.ControlPlane.Store = "etcd" }, []string{
			`config key control_plane.store: must be one of embedded, postgres, got "etcd"`,
		}},
		{"postgres without a DSN", func(c *Config) {
			c.ControlPlane.Store = "postgres"
			c.OnlineStore.Default, c.OnlineStore.Redis.Addr = "redis", "127.0.0.1:6379"
		}, []string{"config key control_plane.postgres.dsn: is required when control_plane.store is postgres"}},
		{"fleet with embedded features", func(c *Config) {
			c.ControlPlane = ControlPlane{Store: "postgres", Postgres: Postgres{DSN: "host=db"}}
		}, []string{"config key online_store.default: is embedded, which one replica alone can read"}},
		{"bad replica id", func(c *Config) { c.ControlPlane.ReplicaID = "../r1" }, []string{
			`config key control_plane.replica_id: want letters, digits, '.', '-' and '_', starting with a letter or digit, at most 63 characters, got "../r1"`,
		}},
		{"long replica id", func(c *Config) { c.ControlPlane.ReplicaID = strings.Repeat("r", 64) }, []string{"config key control_plane.replica_id: "}},
		{"log level", func(c *Config) { c.Log.Level = "loud" }, []string{`config key log.level: must be one of debug, info, warn, error, got "loud"`}},
		{"log format", func(c *Config) { c.Log.Format = "xml" }, []string{`config key log.format: must be one of text, json, got "xml"`}},
		{"max model bytes", func(c *Config) { c.Registry.MaxModelBytes = 0 }, []string{"config key registry.max_model_bytes: must be greater than 0"}},
		{"threads", func(c *Config) { c.ONNX.IntraOpThreads, c.ONNX.InterOpThreads = -1, -2 }, []string{
			"config key onnx.intra_op_threads: must not be negative, got -1",
			"config key onnx.inter_op_threads: must not be negative, got -2",
		}},
		{"timeouts", func(c *Config) { c.Server.ReadTimeout, c.Server.ShutdownTimeout = 0, Duration(-time.Second) }, []string{
			"config key server.read_timeout: must be greater than 0, got 0s",
			"config key server.shutdown_timeout: must be greater than 0, got -1s",
		}},
		{"max body", func(c *Config) { c.Server.MaxBodyBytes = 0 }, []string{"config key server.max_body_bytes: must be greater than 0"}},
		{"store timeouts", func(c *Config) { c.OnlineStore.Timeout, c.OnlineStore.WriteTimeout = 0, Duration(-time.Second) }, []string{
			"config key online_store.timeout: must be greater than 0, got 0s",
			"config key online_store.write_timeout: must be greater than 0, got -1s",
		}},
		{"failure ratio", func(c *Config) { c.OnlineStore.Breaker.FailureRatio = 1.5 }, []string{
			"config key online_store.breaker.failure_ratio: must be greater than 0 and at most 1, got 1.5",
		}},
		{"min requests", func(c *Config) { c.OnlineStore.Breaker.MinRequests = 0 }, []string{
			"config key online_store.breaker.min_requests: must be greater than 0, got 0",
		}},
		{"window shorter than a write", func(c *Config) { c.OnlineStore.Breaker.Window = Duration(5 * time.Second) }, []string{
			"config key online_store.breaker.window: must be longer than online_store.timeout (500ms) and online_store.write_timeout (5s), got 5s",
		}},
		{"key name", func(c *Config) { c.Auth.Keys = []APIKey{key("", sumA, "sre")} }, []string{"config key auth.keys[0].name: must not be empty"}},
		{"duplicate key name", func(c *Config) {
			c.Auth.Keys = []APIKey{key("a", sumA, "sre"), key("b", sumA, "sre"), key("a", sumB, "sre")}
		}, []string{`config key auth.keys[2].name: duplicate name "a" (also auth.keys[0])`}},
		{"uppercase sha", func(c *Config) {
			c.Auth.Keys = []APIKey{key("a", sumA, "sre"), key("b", strings.ToUpper(sumB), "sre")}
		}, []string{"config key auth.keys[1].sha256: must be 64 hex characters"}},
		{"short sha", func(c *Config) { c.Auth.Keys = []APIKey{key("a", sumA[:63], "sre")} }, []string{"config key auth.keys[0].sha256: must be 64 hex characters"}},
		{"no roles", func(c *Config) { c.Auth.Keys = []APIKey{key("a", sumA)} }, []string{"config key auth.keys[0].roles: must list at least one role"}},
		{"bad role", func(c *Config) { c.Auth.Keys = []APIKey{key("a", sumA, "sre", "root")} }, []string{
			`config key auth.keys[0].roles[1]: must be one of predict, data-scientist, sre, admin, got "root"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Defaults()
			tt.modify(&cfg)
			err := cfg.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Errorf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestLoadRunsValidate(t *testing.T) {
	_, err := load(t, "auth:\n  keys:\n    - name: a\n      sha256: abc\n      roles: [sre]\n")
	if err == nil || !strings.Contains(err.Error(), "config key auth.keys[0].sha256: must be 64 hex characters") {
		t.Errorf("got %v", err)
	}
}

func TestPublicListen(t *testing.T) {
	for listen, want := range map[string]bool{
		"127.0.0.1:8080":        true,
		"127.8.9.10:1":          true,
		"[::1]:8080":            true,
		"localhost:8080":        true,
		"LocalHost:8080":        true,
		"[::ffff:127.0.0.1]:80": true,
		":8080":                 false,
		"0.0.0.0:8080":          false,
		"[::]:8080":             false,
		"10.0.0.1:8080":         false,
		"example.com:80":        false,
		"127.0.0.1":             false,
	} {
		c := Config{Listen: listen}
		if key, addr, public := c.PublicListen(); public == want || public && (key != "listen" || addr != listen) {
			t.Errorf("PublicListen with listen %q = %s %s %v, want public %v", listen, key, addr, public, !want)
		}
		// grpc.listen counts as much as listen.
		c = Config{Listen: "127.0.0.1:8080", GRPC: GRPC{Listen: listen}}
		if key, addr, public := c.PublicListen(); public == want || public && (key != "grpc.listen" || addr != listen) {
			t.Errorf("PublicListen with grpc.listen %q = %s %s %v, want public %v", listen, key, addr, public, !want)
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		err  string
	}{
		{in: "0", want: 0},
		{in: "1024", want: 1024},
		{in: "+5", want: 5},
		{in: "7B", want: 7},
		{in: "2KB", want: 2000},
		{in: "3MB", want: 3_000_000},
		{in: "4GB", want: 4_000_000_000},
		{in: "2KiB", want: 2048},
		{in: "256MiB", want: 256 << 20},
		{in: "8GiB", want: 8 << 30},
		{in: " 16 MiB ", want: 16 << 20},
		{in: "8589934591GiB", want: 8589934591 << 30},
		{in: "", err: "missing number"},
		{in: "MiB", err: "missing number"},
		{in: "x", err: `invalid size "x": missing number`},
		{in: "-1", err: "must not be negative"},
		{in: "-1KiB", err: "must not be negative"},
		{in: "12QB", err: `invalid size "12QB": unknown unit "QB"`},
		{in: "1mib", err: `unknown unit "mib"`},
		{in: "1.5GiB", err: "unknown unit"},
		{in: "1-2", err: "invalid syntax"},
		{in: "8589934592GiB", err: "out of range"},
		{in: "99999999999999999999", err: "out of range"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		switch {
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("ParseSize(%q) error = %v; want %q", tt.in, err, tt.err)
		}
	}
}

func TestSizeString(t *testing.T) {
	for s, want := range map[Size]string{
		0: "0B", 1: "1B", 1000: "1000B", KiB: "1KiB", 1536: "1536B", 256 * MiB: "256MiB", 3 * GiB: "3GiB",
	} {
		if got := s.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(s), got, want)
		}
		if back, err := ParseSize(s.String()); err != nil || back != s {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", s.String(), back, err, int64(s))
		}
	}
}

func TestDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "1s", want: time.Second},
		{in: "24h", want: 24 * time.Hour},
		{in: "1m30s", want: 90 * time.Second},
		{in: "250ms", want: 250 * time.Millisecond},
		{in: "0", want: 0},
		{in: "30", err: `invalid duration "30"`},
		{in: "", err: `invalid duration ""`},
		{in: "1d", err: `invalid duration "1d": want a number with a unit`},
	}
	for _, tt := range tests {
		var d Duration
		err := d.UnmarshalText([]byte(tt.in))
		switch {
		case tt.err == "" && (err != nil || time.Duration(d) != tt.want):
			t.Errorf("Duration(%q) = %v, %v; want %v", tt.in, d, err, tt.want)
		case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("Duration(%q) error = %v; want %q", tt.in, err, tt.err)
		}
	}
	if got := Duration(90 * time.Second).String(); got != "1m30s" {
		t.Errorf("String() = %q", got)
	}
}

// TestMarshalRoundTrip checks that a marshalled Config loads back unchanged,
// with durations and sizes written as strings.
func TestMarshalRoundTrip(t *testing.T) {
	want := Defaults()
	want.Auth.Keys = []APIKey{{Name: "a", SHA256: sumA, Roles: []string{"admin"}}}
	out, err := yaml.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"max_model_bytes: 256MiB", "read_timeout: 30s", "idle_timeout: 2m0s"} {
		if !strings.Contains(string(out), s) {
			t.Errorf("marshalled config lacks %q:\n%s", s, out)
		}
	}
	var got Config
	if err := Load(writeFile(t, string(out)), nil, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func FuzzLoadYAML(f *testing.F) {
	f.Add([]byte(""))
	f.Add([]byte("listen: 127.0.0.1:9000\nlog:\n  level: debug\n"))
	f.Add([]byte("registry:\n  max_model_bytes: 1GiB\nserver:\n  read_timeout: 5s\n"))
	f.Add([]byte("auth:\n  keys:\n    - name: a\n      sha256: " + sumA + "\n      roles: [predict, sre]\n"))
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("server: {max_body_bytes: -1}\n"))
	f.Add([]byte("registry:\n  protected_aliases: {champion: PASSED, x: [1]}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "fuzz.yaml")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := Defaults()
		if err := Load(path, nil, &cfg); err != nil {
			return
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("Load accepted a config that fails Validate: %v", err)
		}
	})
}

// TestREADMEConfig loads the configuration shown in the README, so that the
// documentation cannot drift from the loader.
func TestREADMEConfig(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(readme), "## Configuration")
	_, block, ok2 := strings.Cut(rest, "```yaml\n")
	block, _, ok3 := strings.Cut(block, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("the README has no YAML block under ## Configuration")
	}
	cfg := Defaults()
	if err := Load(writeFile(t, block), nil, &cfg); err != nil {
		t.Fatalf("the README's configuration does not load: %v", err)
	}
}

func TestProtectedAliases(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		want map[string]string
		err  string // substring; "" means it loads
	}{
		{name: "default", want: map[string]string{"champion": "PASSED"}},
		{name: "file replaces the default", file: "registry:\n  protected_aliases:\n    production: PASSED\n    staging: PENDING\n",
			want: map[string]string{"production": "PASSED", "staging": "PENDING"}},
		{name: "file turns it off", file: "registry:\n  protected_aliases: {}\n", want: map[string]string{}},
		{name: "null keeps the default", file: "registry:\n  protected_aliases:\n", want: map[string]string{"champion": "PASSED"}},
		{name: "env", env: []string{"MLGATE_REGISTRY_PROTECTED_ALIASES=champion:PASSED, prod : FAILED"},
			want: map[string]string{"champion": "PASSED", "prod": "FAILED"}},
		{name: "env wins over file", file: "registry:\n  protected_aliases: {a: PASSED}\n", env: []string{"MLGATE_REGISTRY_PROTECTED_ALIASES=b:PASSED"},
			want: map[string]string{"b": "PASSED"}},
		{name: "env turns it off", env: []string{"MLGATE_REGISTRY_PROTECTED_ALIASES="}, want: map[string]string{}},
		{name: "unknown status", file: "registry:\n  protected_aliases: {champion: OK}\n",
			err: `config key registry.protected_aliases.champion: must be one of PENDING, PASSED, FAILED, got "OK"`},
		{name: "lower-case status", env: []string{"MLGATE_REGISTRY_PROTECTED_ALIASES=champion:passed"},
			err: `config key registry.protected_aliases.champion: must be one of PENDING, PASSED, FAILED, got "passed"`},
		{name: "bad alias", file: "registry:\n  protected_aliases: {\"1st\": PASSED}\n",
			err: `config key registry.protected_aliases.1st: "1st" is not an alias name`},
		{name: "alias with a slash", env: []string{"MLGATE_REGISTRY_PROTECTED_ALIASES=a/b:PASSED"},
			err: `config key registry.protected_aliases.a/b: "a/b" is not an alias name`},
		{name: "not a mapping", file: "registry:\n  protected_aliases: [champion]\n",
			err: "config key registry.protected_aliases (line 2): expected a mapping, got a sequence"},
		{name: "duplicate in file", file: "registry:\n  protected_aliases:\n    a: PASSED\n    a: FAILED\n",
			err: `duplicate key "registry.protected_aliases.a" (line 4)`},
		{name: "value not single", file: "registry:\n  protected_aliases:\n    a: [PASSED]\n",
			err: "config key registry.protected_aliases.a (line 3): expected a single value, got a sequence"},
		{name: "env item without a colon", env: []string{"MLGATE_REGISTRY_PROTECTED_ALIASES=champion"},
			err: `environment variable MLGATE_REGISTRY_PROTECTED_ALIASES (registry.protected_aliases): item 0: want key:value, got "champion"`},
		{name: "env duplicate", env: []string{"MLGATE_REGISTRY_PROTECTED_ALIASES=a:PASSED,a:FAILED"},
			err: `item 1: duplicate key "a"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := load(t, tt.file, tt.env...)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %v, want an error containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Registry.ProtectedAliases, tt.want) {
				t.Errorf("protected_aliases = %v, want %v", cfg.Registry.ProtectedAliases, tt.want)
			}
		})
	}
}
