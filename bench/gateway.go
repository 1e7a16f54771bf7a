package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"sync"

	"github.com/valyala/fasthttp"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/gateway"
	"github.com/mlgate/mlgate/serving/onnx"
)

// sessionOptions are the ONNX Runtime options of both targets: mlgate's
// defaults (one intra-op and one inter-op thread).
var sessionOptions = onnx.Options{IntraOpThreads: 1, InterOpThreads: 1}

// server is a running target and how to stop it.
type server struct {
	addr string
	// grpcAddr is where the target serves the V2 protocol over gRPC; ""
	// when it does not.
	grpcAddr string
	// replicas, when not empty, are the addresses of a fleet's replicas,
	// which the load is spread over; addr is then the first.
	replicas []string
	// handler answers a request without the network, for handler_test.go.
	handler fasthttp.RequestHandler
	close   func()
	// mlgate only: the gateway, its data directory, and its Shutdown (run
	// once, by the first of shutdown and close).
	gateway  *gateway.Gateway
	dataDir  string
	shutdown func() error
}

// addrs returns where to send the load: the replicas, or addr.
func (s *server) addrs() []string {
	if len(s.replicas) > 0 {
		return s.replicas
	}
	return []string{s.addr}
}

// startGateway starts mlgate in-process exactly as `mlgate serve` does, on its
// default configuration changed by configure (when not nil), with its state in
// a temporary directory.
func startGateway(configure func(*config.Config)) (*server, error) {
	dir, err := os.MkdirTemp("", "mlgate-bench-")
	if err != nil {
		return nil, err
	}
	s, err := startGatewayIn(dir, configure)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	stop := s.close
	s.close = func() {
		stop()
		os.RemoveAll(dir)
	}
	return s, nil
}

// startGatewayIn is startGateway with its state in dir, which close leaves
// in place (a replica restarted on it finds its files again).
func startGatewayIn(dir string, configure func(*config.Config)) (*server, error) {
	cfg := config.Defaults()
	cfg.DataDir, cfg.Listen = dir, "127.0.0.1:0"
	cfg.ONNX.IntraOpThreads, cfg.ONNX.InterOpThreads = sessionOptions.IntraOpThreads, sessionOptions.InterOpThreads
	if configure != nil {
		configure(&cfg)
	}
	// Only warnings and errors: the gateway's info logs would interleave
	// with the report.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	g, err := gateway.Start(context.Background(), cfg, "bench", log)
	if err != nil {
		return nil, err
	}
	shutdown := sync.OnceValue(func() error { return g.Shutdown(context.Background()) })
	return &server{addr: g.Addr, grpcAddr: g.GRPCAddr, handler: g.Server.App().Handler(), gateway: g, dataDir: dir, shutdown: shutdown, close: func() { shutdown() }}, nil
}

// register uploads modelPath as the first version of model name, with
// metadata (JSON, or empty for none), as a client of the registry API would.
func register(addr, name, modelPath, metadata string) error {
	model, err := os.ReadFile(modelPath)
	if err != nil {
		return err
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	if metadata != "" {
		if err := mw.WriteField("metadata", metadata); err != nil {
			return err
		}
	}
	part, err := mw.CreateFormFile("model", filepath.Base(modelPath))
	if err != nil {
		return err
	}
	part.Write(model)
	mw.Close()
	return call(http.MethodPost, "http://"+addr+"/v1/models/"+name+"/versions", mw.FormDataContentType(), &body)
}

func call(method, url, contentType string, body io.Reader) error {
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, msg)
	}
	return nil
}
