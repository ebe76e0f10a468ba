package resource_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
)

// testPKI returns a CA pool, the CA's PEM and leaf certificates signed by
// it.
func testPKI(t *testing.T) (*x509.CertPool, []byte, func(name string, server bool) tls.Certificate) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	serial := int64(2)
	leaf := func(name string, server bool) tls.Certificate {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature,
		}
		serial++
		if server {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		} else {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
			tmpl.DNSNames = []string{name} // its identity for tls_san bindings
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		leaf, _ := x509.ParseCertificate(der)
		return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	}
	return pool, caPEM, leaf
}

// writePEM writes c's certificate and key as PEM files under dir.
func writePEM(t *testing.T, dir, name string, c tls.Certificate) (certFile, keyFile string) {
	t.Helper()
	keyDER, err := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestMutualTLS runs two peered instances with mTLS: agents and clients with
// a certificate from the CA work; a client without one gets nothing.
func TestMutualTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	pool, caPEM, leaf := testPKI(t)
	serverCert := leaf("resource", true)
	clientTLS := &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{leaf("gateway", false)}, MinVersion: tls.VersionTLS12}
	lns := listenAll(t, 2)
	servers := addrs(lns)
	for _, ln := range lns {
		cfg := baseConfig(servers)
		cfg.TLS = &tls.Config{Certificates: []tls.Certificate{serverCert}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
		cfg.PeerTLS = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{serverCert}, MinVersion: tls.VersionTLS12}
		startInstance(t, ln, cfg)
	}
	for i := range 3 {
		cfg := agentConfig(servers[i%2:i%2+1], "llama", "tls-"+string(rune('a'+i)), 9100+i)
		cfg.TLS = clientTLS
		startAgent(t, cfg)
	}
	// A watcher on each instance sees all three nodes (peer links over mTLS).
	for _, s := range servers {
		w := startWatcher(t, []string{s}, "llama", func(c *discovery.ClientConfig) { c.TLS = clientTLS })
		if _, err := w.waitFor(ctx, func(l *discovery.OnlineList) bool { return countEligible(l) == 3 }); err != nil {
			t.Fatal(err)
		}
	}
	// The gateway's way: CA bundle and client certificate as files in
	// discovery.ClientConfig (issue 12, item 11: enabling tier TLS used to
	// disconnect gateways).
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := writePEM(t, dir, "gateway", leaf("gateway-files", false))
	files := startWatcher(t, servers, "llama", func(c *discovery.ClientConfig) {
		c.CAFile, c.CertFile, c.KeyFile = caFile, certFile, keyFile
	})
	if _, err := files.waitFor(ctx, func(l *discovery.OnlineList) bool { return countEligible(l) == 3 }); err != nil {
		t.Fatalf("client configured with PEM files: %v", err)
	}
	if _, err := discovery.NewClient(discovery.ClientConfig{Servers: servers, CertFile: certFile}); err == nil {
		t.Fatal("CertFile without KeyFile must be refused")
	}
	// No client certificate: refused, so nothing is ever delivered.
	bad := startWatcher(t, servers, "llama", func(c *discovery.ClientConfig) {
		c.TLS = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	})
	sctx, scancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer scancel()
	if _, err := bad.waitFor(sctx, func(l *discovery.OnlineList) bool { return len(l.Nodes) > 0 }); err == nil {
		t.Fatal("a client without a certificate got the list")
	}
	if !bad.c.Stale("llama") {
		t.Fatal("the refused client must report its (empty) view stale")
	}
}
