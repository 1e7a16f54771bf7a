package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/gateway"
	"github.com/mlgate/mlgate/internal/telemetry"
)

// serveCommand is `mlgate serve`: the gateway itself.
func serveCommand() *cobra.Command {
	var configPath string
	var demo bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		Long: `Run the gateway until SIGINT or SIGTERM; SIGHUP reloads the API keys from
the configuration.`,
		Example: `  mlgate serve --config mlgate.yaml
  MLGATE_LISTEN=127.0.0.1:9090 mlgate serve --demo`,
		Args: positional(0, 0),
		RunE: func(*cobra.Command, []string) error { return serve(configPath, demo) },
	}
	cmd.Flags().StringVar(&configPath, "config", "", "YAML configuration `file` (every key can also be set as MLGATE_<KEY>)")
	cmd.Flags().BoolVar(&demo, "demo", false, "register the demo model \"iris\" with alias champion when absent, and print a curl that calls it;\n"+
		"with no API keys configured, make an admin key (kept in <data_dir>/demo.key) and print it")
	return cmd
}

// serve runs the gateway configured by the file at configPath (none when
// "") and the MLGATE_ variables, with the demo model when demo is set.
func serve(configPath string, demo bool) error {
	cfg := config.Defaults()
	if err := config.Load(configPath, os.Environ(), &cfg); err != nil {
		return err
	}
	log := newLogger(cfg.Log)
	var demoKey string
	if demo {
		key, err := gateway.DemoKey(&cfg)
		if err != nil {
			return err
		}
		demoKey = key
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g, err := gateway.Start(ctx, cfg, version, log)
	if err != nil {
		return err
	}
	shutdown := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.Server.ShutdownTimeout))
		defer cancel()
		return g.Shutdown(ctx)
	}
	if demo {
		if err := g.RegisterDemo(ctx); err != nil {
			shutdown()
			return fmt.Errorf("register the demo model: %w", err)
		}
		base := "http://" + g.Addr
		if cfg.Server.TLS.CertFile != "" {
			base = "https://" + g.Addr
		}
		fmt.Fprint(stdout, demoMessage(base, g.GRPCAddr, demoKey, filepath.Join(cfg.DataDir, gateway.DemoKeyFile)))
	}
	// SIGHUP reloads the API keys (auth.keys, auth.keys_file,
	// auth.role_limits) from the configuration as it reads now; the rest of
	// it needs a restart.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			return shutdown()
		case err := <-g.Done():
			shutdown()
			return fmt.Errorf("serve: %w", err)
		case <-hup:
			reloadKeys(g, configPath, log)
		}
	}
}

// reloadKeys reads the configuration at path (and the MLGATE_ variables)
// again and gives the gateway its keys; a configuration that does not load
// keeps the keys as they were, and says why in the log.
func reloadKeys(g *gateway.Gateway, path string, log *slog.Logger) {
	cfg := config.Defaults()
	err := config.Load(path, os.Environ(), &cfg)
	if err == nil {
		err = g.ReloadKeys(cfg)
	}
	if err != nil {
		log.Error("SIGHUP: API keys not reloaded; the previous keys stay", "err", err)
	}
}

// demoMessage tells how to call the demo model and its endpoint at base
// (scheme://host:port), and over gRPC at grpcAddr when it is not "", and
// where to open the console: with key, the admin key the demo made and
// keeps at keyPath, or when key is "" (keys are configured), with a key of
// the caller's own.
func demoMessage(base, grpcAddr, key, keyPath string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\nmlgate is serving the demo model %q on %s.\n", gateway.DemoModel, base)
	header := "Authorization: Bearer $MLGATE_API_KEY"
	if key != "" {
		fmt.Fprintf(&b, "No API keys are configured, so the demo made an admin key (kept in %s):\n\n  %s\n\n", keyPath, key)
		header = "Authorization: Bearer " + key
	} else {
		b.WriteString("Set MLGATE_API_KEY to one of your keys that holds the predict role.\n")
	}
	fmt.Fprintf(&b, "Ask it for a prediction:\n\n  curl -s %s/v2/models/%s/infer -H \"%s\" -H 'Content-Type: application/json' \\\n    -d '%s'\n\n",
		base, gateway.DemoModel, header, gateway.DemoRequest)
	fmt.Fprintf(&b, "or through its endpoint %q, which serves %s@champion:\n\n  curl -s %s/v1/endpoints/%s/predict -H \"%s\" -H 'Content-Type: application/json' \\\n    -d '%s'\n\n",
		gateway.DemoModel, gateway.DemoModel, base, gateway.DemoModel, header, gateway.DemoEndpointRequest)
	fmt.Fprintf(&b, "Open the console at %s/ui/ and sign in with the key.\n\n", base)
	if grpcAddr != "" {
		fmt.Fprintf(&b, "The V2 protocol is served over gRPC too, on %s (inference.GRPCInferenceService, with reflection),\n"+
			"for tritonclient.grpc or KServe's InferenceGRPCClient; send the key as the metadata \"authorization: Bearer ...\".\n\n", grpcAddr)
	}
	return b.String()
}

// newLogger logs to stderr as configured. A line logged with a request's
// context carries its request_id, trace_id and span_id.
func newLogger(c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // config.Validate checked it
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if c.Format == "json" {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	return slog.New(telemetry.LogHandler(h))
}
