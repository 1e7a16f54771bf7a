package mlflow_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/errkind"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/testservers"
	"github.com/mlgate/mlgate/registry/mlflow"
)

// TestClient reads a real MLflow tracking server (PyPI's mlflow, started
// on loopback with a local backend and artifact store) into which a Python
// script logged two ONNX versions and one that is no model.
func TestClient(t *testing.T) {
	uri := startMLflow(t)
	python := testservers.MLflowPython(t)
	out, err := exec.Command(python, "testdata/log_models.py", uri, "scorer", modelzoo.Path(modelzoo.Linear), modelzoo.Path(modelzoo.LinearV2)).CombinedOutput()
	if err != nil {
		t.Fatalf("log the models: %v\n%s", err, out)
	}
	c, err := mlflow.New(uri, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()

	names, err := c.Models(ctx)
	if err != nil || len(names) != 1 || names[0] != "scorer" {
		t.Fatalf("Models = %v, %v", names, err)
	}
	m, err := c.Model(ctx, "scorer")
	if err != nil || m.Aliases["champion"] != 1 {
		t.Fatalf("Model = %+v, %v; want champion on 1", m, err)
	}
	versions, err := c.Versions(ctx, "scorer")
	if err != nil || len(versions) != 3 {
		t.Fatalf("Versions = %+v, %v", versions, err)
	}
	v2 := versions[1]
	if v2.Number != 2 || v2.RunID == "" || v2.Description != "weights refit on May data" || v2.Tags["team"] != "risk" || v2.Status != "READY" {
		t.Errorf("version 2 = %+v", v2)
	}

	for _, tt := range []struct {
		version int
		file    string
	}{{1, modelzoo.Linear}, {2, modelzoo.LinearV2}} {
		var got bytes.Buffer
		from, err := c.FetchONNX(ctx, "scorer", tt.version, &got, 1<<20)
		if err != nil {
			t.Fatalf("FetchONNX %d: %v", tt.version, err)
		}
		want, _ := os.ReadFile(modelzoo.Path(tt.file))
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("version %d from %s: %d bytes, not %s's %d", tt.version, from, got.Len(), tt.file, len(want))
		}
	}

	var got bytes.Buffer
	_, err = c.FetchONNX(ctx, "scorer", 3, &got, 1<<20)
	if !errors.Is(err, mlflow.ErrNoONNX) || !strings.Contains(err.Error(), "neither an MLmodel nor a .onnx file") {
		t.Errorf("version 3 (a text file): %v; want ErrNoONNX saying why", err)
	}
	if _, err := c.FetchONNX(ctx, "scorer", 1, &got, 10); errkind.Of(err) != errkind.TooLarge {
		t.Errorf("a model over the limit: %v; want TooLarge", err)
	}
	if _, err := c.Model(ctx, "nope"); errkind.Of(err) != errkind.NotFound || !strings.Contains(err.Error(), "nope") {
		t.Errorf("an unknown model: %v; want NotFound naming it", err)
	}
}

// TestClientServerDown: a server that does not answer is Unavailable.
func TestClientServerDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	c, err := mlflow.New("http://"+addr, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Models(t.Context()); errkind.Of(err) != errkind.Unavailable {
		t.Errorf("a server that is down: %v; want Unavailable", err)
	}
}

func TestNewRefusesBadURI(t *testing.T) {
	for _, uri := range []string{"", "127.0.0.1:5000", "file:///tmp/mlruns", "http://"} {
		if _, err := mlflow.New(uri, ""); err == nil || !strings.Contains(err.Error(), "tracking_uri") {
			t.Errorf("New(%q) = %v; want an error naming tracking_uri", uri, err)
		}
	}
}

// startMLflow starts `mlflow server` on a free loopback port with a SQLite
// backend and a local artifact store in the test's directory, and stops
// it when the test ends.
func startMLflow(t *testing.T) string {
	t.Helper()
	python := testservers.MLflowPython(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	var log testservers.Log
	cmd := exec.Command(filepath.Join(filepath.Dir(python), "mlflow"), "server", "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--backend-store-uri", "sqlite:///"+filepath.Join(dir, "mlflow.db"), "--artifacts-destination", filepath.Join(dir, "artifacts"), "--workers", "1")
	cmd.Stdout, cmd.Stderr = &log, &log
	// The server runs workers of its own: it gets a process group, which
	// the cleanup stops as a whole.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	uri := "http://127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(90 * time.Second)
	for {
		c, _ := mlflow.New(uri, "")
		if _, err := c.Models(context.Background()); err == nil {
			return uri
		}
		if time.Now().After(deadline) {
			t.Fatalf("mlflow server did not answer in 90 s:\n%s", log.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
}
