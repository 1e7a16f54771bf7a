package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/mlgate/mlgate/internal/auth"
	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/registry"
	"github.com/mlgate/mlgate/registry/bolt"
	"github.com/mlgate/mlgate/registry/localfs"
	"github.com/mlgate/mlgate/serving"
	"github.com/mlgate/mlgate/serving/onnx"
)

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	configPath := fs.String("config", "", "YAML configuration `file` (every key can also be set as MLGATE_<KEY>)")
	demo := fs.Bool("demo", false, "register the demo model \"iris\" with alias champion when absent, and print a curl that calls it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("serve: unexpected argument %q", fs.Arg(0))
	}
	cfg := config.Defaults()
	if err := config.Load(*configPath, os.Environ(), &cfg); err != nil {
		return err
	}
	log := newLogger(cfg.Log)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g, err := start(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer g.close()
	if *demo {
		if err := registerDemo(ctx, g); err != nil {
			return fmt.Errorf("register the demo model: %w", err)
		}
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-g.served:
		return fmt.Errorf("serve: %w", err)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.Server.ShutdownTimeout))
	defer cancel()
	return g.server.Shutdown(shutdownCtx)
}

// gateway is a running mlgate and what it must close.
type gateway struct {
	addr    string
	reg     *registry.Registry
	catalog *serving.Catalog
	server  *serving.Server
	meta    registry.MetaStore
	served  chan error
	log     *slog.Logger
}

// start opens the stores, starts listening (so that liveness answers while
// models load), then loads every registered version.
func start(ctx context.Context, cfg config.Config, log *slog.Logger) (*gateway, error) {
	authn, err := newAuthenticator(cfg, log)
	if err != nil {
		return nil, err
	}
	lib, err := onnx.FindLibrary(cfg.ONNX.Library)
	if err != nil {
		return nil, err
	}
	if err := onnx.Init(lib); err != nil {
		return nil, err
	}
	log.Info("ONNX Runtime loaded", "version", onnx.Version(), "library", lib)

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data directory (data_dir): %w", err)
	}
	meta, err := bolt.Open(filepath.Join(cfg.DataDir, "registry.db"))
	if err != nil {
		return nil, err
	}
	artifacts, err := localfs.New(filepath.Join(cfg.DataDir, "artifacts"))
	if err != nil {
		meta.Close()
		return nil, err
	}
	sessionOpts := onnx.Options{IntraOpThreads: cfg.ONNX.IntraOpThreads, InterOpThreads: cfg.ONNX.InterOpThreads}
	reg := registry.New(meta, artifacts, onnx.Inspector{Options: sessionOpts}, int64(cfg.Registry.MaxModelBytes))
	catalog := serving.NewCatalog(reg, warmLoader(sessionOpts), log)
	server := serving.New(serving.Options{
		MaxBodyBytes: int64(cfg.Server.MaxBodyBytes),
		ReadTimeout:  time.Duration(cfg.Server.ReadTimeout),
		WriteTimeout: time.Duration(cfg.Server.WriteTimeout),
		IdleTimeout:  time.Duration(cfg.Server.IdleTimeout),
		Version:      version,
	}, reg, catalog, authn, log)

	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		meta.Close()
		return nil, fmt.Errorf("listen (listen: %s): %w", cfg.Listen, err)
	}
	g := &gateway{addr: ln.Addr().String(), reg: reg, catalog: catalog, server: server, meta: meta, served: make(chan error, 1), log: log}
	go func() { g.served <- server.Serve(ln) }()
	log.Info("mlgate listening", "addr", g.addr, "data_dir", cfg.DataDir)
	if err := catalog.Sync(ctx); err != nil {
		g.close()
		return nil, fmt.Errorf("load registered models: %w", err)
	}
	log.Info("ready")
	return g, nil
}

func (g *gateway) close() {
	g.catalog.Close()
	if err := g.meta.Close(); err != nil {
		g.log.Error("close registry", "err", err)
	}
}

func warmLoader(opts onnx.Options) serving.Loader {
	return func(path string) (*onnx.Session, error) {
		s, err := onnx.Load(path, opts)
		if err != nil {
			return nil, err
		}
		if err := s.Warm(); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	}
}

func newAuthenticator(cfg config.Config, log *slog.Logger) (*auth.Authenticator, error) {
	keys := make([]auth.Key, len(cfg.Auth.Keys))
	for i, k := range cfg.Auth.Keys {
		keys[i] = auth.Key{Name: k.Name, SHA256: k.SHA256}
		for _, r := range k.Roles {
			role, err := auth.ParseRole(r)
			if err != nil {
				return nil, fmt.Errorf("config key auth.keys[%d].roles: %w", i, err)
			}
			keys[i].Roles = append(keys[i].Roles, role)
		}
	}
	a, err := auth.New(keys)
	if err != nil {
		return nil, fmt.Errorf("config key auth.keys: %w", err)
	}
	if a.Open() {
		if !cfg.LoopbackListen() {
			return nil, fmt.Errorf("config key auth.keys: API keys are required when listen (%s) is not a loopback address", cfg.Listen)
		}
		log.Warn("no API keys configured (auth.keys): every caller may do everything; allowed only because the listener is on loopback")
	}
	return a, nil
}

func newLogger(c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // config.Validate checked it
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

const demoModel = "iris"

// registerDemo registers the bundled iris classifier as the first version of
// "iris" with alias champion, unless the model exists, and prints a curl
// command that calls it.
func registerDemo(ctx context.Context, g *gateway) error {
	if _, err := g.reg.Model(ctx, demoModel); errors.Is(err, registry.ErrNotFound) {
		md := registry.Metadata{
			Description: "Logistic regression on the iris data set (scikit-learn, converted with skl2onnx); mlgate's demo model.",
			Tags:        map[string]string{registry.TagValidationStatus: string(registry.StatusPassed), "demo": "true"},
			Lineage:     registry.Lineage{Data: "sklearn.datasets.load_iris", Code: "internal/modelzoo/gen.py"},
		}
		v, err := g.reg.Register(ctx, "demo", demoModel, bytes.NewReader(modelzoo.Iris), md)
		if err != nil {
			return err
		}
		if err := g.reg.SetAlias(ctx, "demo", demoModel, registry.AliasChampion, v.Version); err != nil {
			return err
		}
		if err := g.catalog.Sync(ctx); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	fmt.Printf(`
mlgate is serving the demo model %q on http://%[2]s. Ask it for a prediction:

  curl -s http://%[2]s/v2/models/%[1]s/infer -H 'Content-Type: application/json' \
    -d '{"inputs":[{"name":"float_input","shape":[2,4],"datatype":"FP32","data":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}]}'

`, demoModel, g.addr)
	return nil
}
