package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"

	"github.com/mlgate/mlgate/internal/config"
)

// listen opens the listener, serving TLS when the config names a
// certificate and key.
func listen(cfg config.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen (listen: %s): %w", cfg.Listen, err)
	}
	t := cfg.Server.TLS
	if t.CertFile == "" {
		return ln, nil
	}
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("config key server.tls: %w", err)
	}
	return tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}), nil
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
