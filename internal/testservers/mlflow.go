package testservers

import (
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// MLflowPython returns a Python interpreter with mlflow, onnx and
// onnxruntime (TEST_MLFLOW_PYTHON, which `make mlflow` sets up in an
// environment of its own), for running a real MLflow tracking server and
// logging models into it as a data scientist would.
func MLflowPython(tb testing.TB) string {
	tb.Helper()
	return lookup(tb, "TEST_MLFLOW_PYTHON", "Python with mlflow (make mlflow, then TEST_MLFLOW_PYTHON=.cache/mlflowenv/bin/python)")[0]
}

// MLflow is a tracking server (`mlflow server`) on a loopback port, with
// a SQLite backend store and a local artifact store served through its
// artifact proxy, in a directory of the test's.
type MLflow struct {
	// URI is the server's tracking URI, http://127.0.0.1:port.
	URI string
	cmd *exec.Cmd
	log *Log
}

// StartMLflow starts a tracking server, waits until it answers, and stops
// it when the test ends.
func StartMLflow(tb testing.TB) *MLflow {
	tb.Helper()
	python := MLflowPython(tb)
	dir := tb.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	m := &MLflow{URI: "http://127.0.0.1:" + strconv.Itoa(port), log: &Log{}}
	m.cmd = exec.Command(filepath.Join(filepath.Dir(python), "mlflow"), "server", "--host", "127.0.0.1", "--port", strconv.Itoa(port),
		"--backend-store-uri", "sqlite:///"+filepath.Join(dir, "mlflow.db"), "--artifacts-destination", filepath.Join(dir, "artifacts"), "--workers", "1")
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	// The server runs workers of its own: it gets a process group, which
	// Stop ends as a whole.
	m.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	m.cmd.WaitDelay = 5 * time.Second
	if err := m.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(m.Stop)
	deadline := time.Now().Add(90 * time.Second)
	for {
		resp, err := http.Get(m.URI + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return m
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("mlflow server did not answer in 90 s:\n%s", m.log.String())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// Stop kills the server (a second call does nothing).
func (m *MLflow) Stop() {
	if m.cmd.ProcessState != nil {
		return
	}
	syscall.Kill(-m.cmd.Process.Pid, syscall.SIGKILL)
	m.cmd.Wait()
}
