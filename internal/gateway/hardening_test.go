package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mlgate/mlgate/internal/config"
	"github.com/mlgate/mlgate/internal/testservers"
)

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool trusting it.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mlgate test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	keyDER, _ := x509.MarshalECPrivateKey(key)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestTLSListener serves HTTPS with the configured certificate.
func TestTLSListener(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	cfg := testConfig(t.TempDir())
	cfg.Server.TLS.CertFile, cfg.Server.TLS.KeyFile = certFile, keyFile
	g, err := Start(t.Context(), cfg, "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://" + g.Addr + "/v2/health/live")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil {
		t.Errorf("HTTPS health: %d, TLS %v", resp.StatusCode, resp.TLS != nil)
	}
	if resp, err := http.Get("http://" + g.Addr + "/v2/health/live"); err == nil && resp.StatusCode == 200 {
		t.Error("plain HTTP was answered on the TLS listener")
	}
}

// TestRedisOverTLS talks to a private redis-server that only speaks TLS.
func TestRedisOverTLS(t *testing.T) {
	needRedisServer(t)
	certFile, keyFile, _ := selfSigned(t)
	port := freePort(t)
	srv := exec.Command("redis-server", "--port", "0", "--tls-port", fmt.Sprint(port), "--tls-cert-file", certFile, "--tls-key-file", keyFile,
		"--tls-ca-cert-file", certFile, "--tls-auth-clients", "no", "--save", "", "--appendonly", "no")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	waitPort(t, port)

	cfg := testConfig(t.TempDir())
	cfg.OnlineStore.Redis.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	cfg.OnlineStore.Redis.TLS.Enabled = true
	cfg.OnlineStore.Redis.TLS.CAFile = certFile
	g, err := Start(t.Context(), cfg, "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	call(t, g, "PUT", "/v1/feature-views/user", "application/json", strings.NewReader(
		`{"entities": ["user_id"], "features": [{"name": "age", "type": "float"}], "store": "redis"}`))
	call(t, g, "POST", "/v1/feature-views/user/rows", "application/json", strings.NewReader(`{"rows": [{"user_id": "u1", "age": 7}]}`))
	if got := call(t, g, "POST", "/v1/features/online", "application/json", strings.NewReader(`{"features": ["user:age"], "entities": {"user_id": ["u1"]}}`)); !strings.Contains(got, `"values":[7]`) {
		t.Errorf("read over TLS: %s", got)
	}
}

// TestCassandraOverTLS reads and writes features through the test Cassandra's
// TLS handshake (its native port takes TLS and plain connections alike). The
// same gateway trusting another certificate must not start: the connection
// really is TLS, checked against the CA file.
func TestCassandraOverTLS(t *testing.T) {
	hosts := testservers.Cassandra(t)
	ca := testservers.CassandraCA(t)
	cfg := testConfig(t.TempDir())
	cfg.OnlineStore.Cassandra.Hosts = hosts
	cfg.OnlineStore.Cassandra.Keyspace = fmt.Sprintf("gwtls%d", time.Now().UnixNano())
	cfg.OnlineStore.Cassandra.Timeout = config.Duration(30 * time.Second)
	cfg.OnlineStore.Cassandra.TLS.Enabled = true
	cfg.OnlineStore.Cassandra.TLS.CAFile = ca
	g, err := Start(t.Context(), cfg, "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer g.Shutdown(context.Background())
	call(t, g, "PUT", "/v1/feature-views/user", "application/json", strings.NewReader(
		`{"entities": ["user_id"], "features": [{"name": "age", "type": "float"}], "store": "cassandra"}`))
	call(t, g, "POST", "/v1/feature-views/user/rows", "application/json", strings.NewReader(`{"rows": [{"user_id": "u1", "age": 7}]}`))
	if got := call(t, g, "POST", "/v1/features/online", "application/json", strings.NewReader(`{"features": ["user:age"], "entities": {"user_id": ["u1"]}}`)); !strings.Contains(got, `"values":[7]`) {
		t.Errorf("read over TLS: %s", got)
	}

	other, _, _ := selfSigned(t)
	cfg = testConfig(t.TempDir())
	cfg.OnlineStore.Cassandra.Hosts = hosts
	cfg.OnlineStore.Cassandra.Keyspace = "gwtls_untrusted"
	cfg.OnlineStore.Cassandra.TLS.Enabled = true
	cfg.OnlineStore.Cassandra.TLS.CAFile = other
	if g, err := Start(t.Context(), cfg, "test", quiet()); err == nil {
		g.Shutdown(context.Background())
		t.Fatal("started against a Cassandra whose certificate it does not trust")
	} else if !strings.Contains(err.Error(), "certificate") {
		t.Errorf("untrusted certificate: %v, want an error about the certificate", err)
	}
}

// TestDrain checks that a stopping gateway answers not ready for its drain
// delay while it still serves, then refuses connections.
func TestDrain(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.Server.DrainDelay = config.Duration(500 * time.Millisecond)
	g, err := Start(t.Context(), cfg, "test", quiet())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- g.Shutdown(context.Background()) }()
	time.Sleep(100 * time.Millisecond)
	resp, err := http.Get("http://" + g.Addr + "/v2/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("ready while draining: %d, want 503", resp.StatusCode)
	}
	if resp, err := http.Get("http://" + g.Addr + "/v2/health/live"); err != nil || resp.StatusCode != 200 {
		t.Errorf("live while draining: %v %v", resp, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", g.Addr, time.Second); err == nil {
		t.Error("a stopped gateway still accepts connections")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitPort(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on %d", port)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
