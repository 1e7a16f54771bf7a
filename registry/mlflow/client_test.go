package mlflow_test

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/mlgate/mlgate/internal/errkind"
	"github.com/mlgate/mlgate/internal/modelzoo"
	"github.com/mlgate/mlgate/internal/testservers"
	"github.com/mlgate/mlgate/registry/mlflow"
)

// TestClient reads a real MLflow tracking server (PyPI's mlflow, started
// on loopback with a local backend and artifact store) into which a Python
// script logged two ONNX versions and one that is no model.
func TestClient(t *testing.T) {
	uri := testservers.StartMLflow(t).URI
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
		fetched, err := c.FetchONNX(ctx, "scorer", tt.version, &got, 1<<20)
		if err != nil {
			t.Fatalf("FetchONNX %d: %v", tt.version, err)
		}
		want, _ := os.ReadFile(modelzoo.Path(tt.file))
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("version %d from %s: %d bytes, not %s's %d", tt.version, fetched.From, got.Len(), tt.file, len(want))
		}
		if hasFile := fetched.Metadata != nil; hasFile != (tt.version == 2) {
			t.Errorf("version %d: mlgate.json %q", tt.version, fetched.Metadata)
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
