package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// keyedConfig writes a configuration with one admin key, and returns its
// path and the key.
func keyedConfig(t *testing.T) (path, key string) {
	t.Helper()
	key = "memory-test-key"
	sum := sha256.Sum256([]byte(key))
	path = filepath.Join(t.TempDir(), "mlgate.yaml")
	cfg := fmt.Sprintf("auth:\n  keys:\n    - name: root\n      sha256: %s\n      roles: [admin]\n", hex.EncodeToString(sum[:]))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, key
}

// rssBytes reads the resident set size of process pid.
func rssBytes(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS in /proc status")
	return 0
}

// TestHostileBodiesKeepMemoryBounded sends what took a gateway from 75 MB to
// 2.4 GB of resident memory before bodies were read after authentication:
// connections declaring 200,000,000-byte bodies and sending one byte, 250 MB
// bodies sent without a key, and 500 connections trickling bodies. The
// resident set of the real `mlgate serve` may grow by at most maxGrowth, and
// it must still answer, a null monitor spec included.
func TestHostileBodiesKeepMemoryBounded(t *testing.T) {
	const maxGrowth = 150 << 20 // generous: the bodies alone would be 1.8 GB
	bin := buildBinary(t)
	cfgPath, key := keyedConfig(t)
	addr := freeAddr(t)
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "MLGATE_DATA_DIR="+t.TempDir(), "MLGATE_LISTEN="+addr, "MLGATE_LOG_LEVEL=error",
		"MLGATE_SERVER_READ_TIMEOUT=5s")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitLive(t, addr)
	before := rssBytes(t, cmd.Process.Pid)

	var wg sync.WaitGroup
	// Four connections declaring 200,000,000 bytes and sending one.
	for range 4 {
		wg.Go(func() { declareAndStall(t, addr, 200_000_000, 1, time.Second) })
	}
	// Four 250 MB bodies without a key, sent as fast as the gateway takes them.
	for range 4 {
		wg.Go(func() { sendUnauthenticated(t, addr, 250<<20) })
	}
	// 500 connections trickling a 1 MB declared body, a byte at a time.
	for range 500 {
		wg.Go(func() { declareAndStall(t, addr, 1<<20, 64, 2*time.Second) })
	}
	wg.Wait()
	after := rssBytes(t, cmd.Process.Pid)
	t.Logf("resident memory: %d MB before, %d MB after the hostile bodies", before>>20, after>>20)
	if after-before > maxGrowth {
		t.Errorf("resident memory grew by %d MB under hostile bodies, more than %d MB", (after-before)>>20, maxGrowth>>20)
	}
	// The body that once took the process down: a monitor spec of null.
	req, _ := http.NewRequest("PUT", "http://"+addr+"/v1/monitors/m2", strings.NewReader("null"))
	req.Header.Set("Authorization", "Bearer "+key)
	if resp, err := http.DefaultClient.Do(req); err != nil {
		t.Fatalf("PUT a null monitor: %v", err)
	} else if resp.Body.Close(); resp.StatusCode != 400 {
		t.Errorf("PUT a null monitor: %d, want 400", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + addr + "/v2/health/live"); err != nil {
		t.Fatalf("the gateway no longer answers: %v", err)
	} else {
		resp.Body.Close()
	}
}

func waitLive(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/health/live")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("mlgate did not come up")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// declareAndStall opens a connection, sends a predict request that declares
// a body of declared bytes without a key, sends sent of them over stall,
// and reads the answer, if any. The gateway answers 401 once two bytes of
// the body came (fasthttp reads that far ahead), or hangs up at its read
// timeout.
func declareAndStall(t *testing.T, addr string, declared, sent int, stall time.Duration) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Errorf("dial: %v", err)
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(stall + 8*time.Second)) // past the gateway's read timeout
	fmt.Fprintf(conn, "POST /v2/models/iris/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", declared)
	step := stall / time.Duration(sent)
	for range sent {
		if _, err := conn.Write([]byte{'{'}); err != nil {
			return // the gateway answered and closed: what it should do
		}
		time.Sleep(step)
	}
	io.Copy(io.Discard, conn)
}

// sendUnauthenticated posts n bytes without a key and drains the answer.
func sendUnauthenticated(t *testing.T, addr string, n int64) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Errorf("dial: %v", err)
		return
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(conn, "POST /v1/models/m/versions HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: %d\r\n\r\n", n)
	chunk := make([]byte, 1<<20)
	for sent := int64(0); sent < n; sent += int64(len(chunk)) {
		if _, err := conn.Write(chunk); err != nil {
			return // refused and closed
		}
	}
	io.Copy(io.Discard, conn)
}
