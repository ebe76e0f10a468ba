package upstream

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// NewTLS builds the TLS client config of a route's nodes from its tls
// block (nil for plaintext): TLS 1.2 at least, the CA bundle or the
// system roots, the client certificate (re-read when its files change)
// and the server name. Each Node derives its own per-protocol copies.
// The CA bundle is read once: a new bundle takes a reload.
func NewTLS(c *config.UpstreamTLS, log *slog.Logger) (*tls.Config, error) {
	if c == nil {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.InsecureSkipVerify {
		tc.InsecureSkipVerify = true //nolint:gosec // asked for explicitly (tls.insecure_skip_verify); logged
		if log != nil {
			log.Warn("gateway: tls.insecure_skip_verify: node certificates are not verified")
		}
	}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls.ca_file %q: no PEM certificate in it", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		kp, err := LoadKeyPair(c.CertFile, c.KeyFile, "tls.cert_file", log)
		if err != nil {
			return nil, err
		}
		tc.GetClientCertificate = kp.GetClientCertificate
	}
	return tc, nil
}

// nodeTLS derives a node's TLS configs from its route's: one offering
// HTTP/1.1 by ALPN for the connection pool, one offering h2 for gRPC,
// both verifying the node's host unless the route names a server. There
// is no session cache: connections are pooled and long-lived, and a full
// handshake on every new one presents the client certificate in force (a
// resumed session would carry the one it began with).
func nodeTLS(route *tls.Config, hostport string) (h1, h2 *tls.Config) {
	if route == nil {
		return nil, nil
	}
	h1 = route.Clone()
	if h1.ServerName == "" {
		if host, _, err := net.SplitHostPort(hostport); err == nil {
			h1.ServerName = host
		}
	}
	h2 = h1.Clone()
	h1.NextProtos = []string{"http/1.1"}
	h2.NextProtos = []string{"h2"}
	return h1, h2
}

// dialH2TLS dials addr and completes a TLS handshake with tc within ctx,
// for an HTTP/2 connection (h2client batches its writes above TLS, so a
// batch of frames is one TLS record).
func dialH2TLS(ctx context.Context, d *net.Dialer, addr string, tc *tls.Config) (net.Conn, error) {
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	c := tls.Client(nc, tc)
	if err := c.HandshakeContext(ctx); err != nil {
		_ = nc.Close()
		return nil, fmt.Errorf("gateway: TLS handshake with node %s: %w", addr, err)
	}
	return c, nil
}

// KeyPair serves a certificate and key from PEM files, re-reading them
// when either file's size or modification time changes (cert-manager and
// Kubernetes Secret mounts rotate them in place). A pair that fails to
// load — a rotation half written, a bad file — keeps the last good one:
// the failure is logged once at warning, the recovery at info. Safe for
// concurrent use.
type KeyPair struct {
	// Immutable.
	cert, key, what string
	log             *slog.Logger

	mu    sync.Mutex
	stamp string           // guarded by mu: the files' stamp c was read at
	bad   string           // guarded by mu: the stamp that last failed (logged once)
	c     *tls.Certificate // guarded by mu
}

// LoadKeyPair reads the pair now; what names it in errors and logs (its
// YAML field). log may be nil.
func LoadKeyPair(certFile, keyFile, what string, log *slog.Logger) (*KeyPair, error) {
	k := &KeyPair{cert: certFile, key: keyFile, what: what, log: log}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	k.c, k.stamp = &c, k.fileStamp()
	return k, nil
}

// Certificate returns the current pair, reloading it first when the
// files changed.
func (k *KeyPair) Certificate() *tls.Certificate {
	stamp := k.fileStamp()
	k.mu.Lock()
	defer k.mu.Unlock()
	if stamp == k.stamp || stamp == k.bad {
		return k.c
	}
	c, err := tls.LoadX509KeyPair(k.cert, k.key)
	if err != nil {
		k.bad = stamp
		if k.log != nil {
			k.log.Warn("gateway: certificate files changed but do not load; keeping the previous certificate", "field", k.what, "err", err)
		}
		return k.c
	}
	k.c, k.stamp, k.bad = &c, stamp, ""
	if k.log != nil {
		k.log.Info("gateway: certificate reloaded", "field", k.what, "file", k.cert)
	}
	return k.c
}

// GetCertificate is tls.Config.GetCertificate for a server.
func (k *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return k.Certificate(), nil
}

// GetClientCertificate is tls.Config.GetClientCertificate for a client.
func (k *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return k.Certificate(), nil
}

// fileStamp is the two files' sizes and modification times ("" parts
// when a file is missing).
func (k *KeyPair) fileStamp() string {
	return stampOf(k.cert) + "|" + stampOf(k.key)
}

func stampOf(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprint(fi.Size(), ".", fi.ModTime().UnixNano())
}
