package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	"github.com/mlgate/mlgate/internal/config"
)

// listen opens the HTTP listener, serving TLS when the config names a
// certificate and key.
func listen(cfg config.Config) (net.Listener, error) {
	return listenOn("listen", cfg.Listen, cfg.Server.TLS)
}

// listenGRPC opens the gRPC listener (grpc.listen), with TLS as listen has
// it; gRPC clients ask for HTTP/2 by ALPN.
func listenGRPC(cfg config.Config) (net.Listener, error) {
	return listenOn("grpc.listen", cfg.GRPC.Listen, cfg.Server.TLS, "h2")
}

// listenOn listens on addr (the config key key), with TLS when t names a
// certificate and key, offering protos by ALPN.
func listenOn(key, addr string, t config.TLSFiles, protos ...string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen (%s: %s): %w", key, addr, err)
	}
	if t.CertFile == "" {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("config key server.tls: %w", err)
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: protos}), nil
}

// clientTLS builds the TLS config of a connection to a store, or nil when
// TLS is off. key names the config section, for errors.
func clientTLS(key string, c config.ClientTLS) (*tls.Config, error) {
	if !c.Enabled {
		return nil, nil
	}
	out := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("config key %s.ca_file: %w", key, err)
		}
		out.RootCAs = x509.NewCertPool()
		if !out.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("config key %s.ca_file: %s holds no PEM certificate", key, c.CAFile)
		}
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("config key %s.cert_file / key_file: %w", key, err)
		}
		out.Certificates = []tls.Certificate{cert}
	}
	return out, nil
}
