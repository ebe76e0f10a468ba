package discovery

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
)

// tlsConfig returns the client's TLS config: cfg.TLS as given, or one built
// from CAFile, CertFile and KeyFile (nil when none is set: plain HTTP).
func (c *ClientConfig) tlsConfig() (*tls.Config, error) {
	if c.TLS != nil || (c.CAFile == "" && c.CertFile == "" && c.KeyFile == "") {
		return c.TLS, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("discovery: client config: CAFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("discovery: client config: CAFile: no PEM certificate in %s", c.CAFile)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" {
		r := &certReloader{cert: c.CertFile, key: c.KeyFile}
		if _, err := r.get(nil); err != nil {
			return nil, err
		}
		tc.GetClientCertificate = r.get
	}
	return tc, nil
}

// validateTLS checks the TLS fields.
func (c *ClientConfig) validateTLS() error {
	switch {
	case c.TLS != nil && (c.CAFile != "" || c.CertFile != "" || c.KeyFile != ""):
		return errors.New("discovery: client config: set TLS or CAFile/CertFile/KeyFile, not both")
	case (c.CertFile == "") != (c.KeyFile == ""):
		return errors.New("discovery: client config: CertFile and KeyFile go together")
	}
	return nil
}

// certReloader serves a client certificate from PEM files, re-reading them
// when their size or modification time changes (certificates are rotated
// in place, e.g. by cert-manager). Safe for concurrent use.
type certReloader struct {
	cert, key string

	mu    sync.Mutex
	stamp string           // guarded by mu
	c     *tls.Certificate // guarded by mu
}

func (r *certReloader) get(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	stamp := fileStamp(r.cert) + "|" + fileStamp(r.key)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.c != nil && stamp == r.stamp {
		return r.c, nil
	}
	c, err := tls.LoadX509KeyPair(r.cert, r.key)
	if err != nil {
		if r.c != nil {
			return r.c, nil // a rotation half written: keep the last good pair
		}
		return nil, fmt.Errorf("discovery: client config: CertFile/KeyFile: %w", err)
	}
	r.c, r.stamp = &c, stamp
	return r.c, nil
}

func fileStamp(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	return fmt.Sprint(fi.Size(), fi.ModTime().UnixNano())
}
