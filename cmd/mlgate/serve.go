package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/gateway"
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
	g, err := gateway.Start(ctx, cfg, version, log)
	if err != nil {
		return err
	}
	shutdown := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(cfg.Server.ShutdownTimeout))
		defer cancel()
		return g.Shutdown(ctx)
	}
	if *demo {
		if err := g.RegisterDemo(ctx); err != nil {
			shutdown()
			return fmt.Errorf("register the demo model: %w", err)
		}
		fmt.Printf(`
mlgate is serving the demo model %q on http://%s. Ask it for a prediction:

  curl -s http://%[2]s/v2/models/%[1]s/infer -H 'Content-Type: application/json' \
    -d '%[3]s'

`, gateway.DemoModel, g.Addr, gateway.DemoRequest)
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down")
		return shutdown()
	case err := <-g.Done():
		shutdown()
		return fmt.Errorf("serve: %w", err)
	}
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
