package chaos

import (
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
	"path/filepath"
	"time"
)

// The TLS identities of the topology (DNS SANs of their certificates,
// named in the credentials file).
const (
	sanLlamaAgent   = "agent.llama.chaos.test"    // the engines' agents (a token: the name is bound to nothing)
	sanFixtureAgent = "agent.fixtures.chaos.test" // the fixtures' agents: the certificate alone
	sanBoundAgent   = "agent.bound.chaos.test"    // bound agents: the certificate and a token
	sanGateway      = "gateway.chaos.test"        // a reader by the certificate alone
	sanHarness      = "harness.chaos.test"        // the harness: bound to no credential
)

// pki is the run's test CA and its certificates, written as PEM files
// into the run's directory; a second, untrusted CA signs a rogue client
// certificate. Generated in-process at every run (ECDSA P-256, valid for
// a day).
type pki struct {
	dir  string
	ca   *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
	// caFile is the CA bundle every party trusts; rogueCAFile the
	// untrusted one's.
	caFile, rogueCAFile string
	// files of each identity: name -> [cert, key]
	files map[string][2]string
	certs map[string]tls.Certificate
}

// Identities: "server" (127.0.0.1: Resource instances, the gateway's
// TLS listener, the https engine; also the instances' client certificate
// on peer links), the SANs above, and "rogue" (the bound agents' SAN,
// signed by the untrusted CA).
func newPKI(dir string) (*pki, error) {
	p := &pki{dir: dir, files: map[string][2]string{}, certs: map[string]tls.Certificate{}}
	var err error
	if p.ca, p.key, err = selfSigned("chaos test CA"); err != nil {
		return nil, err
	}
	p.pool = x509.NewCertPool()
	p.pool.AddCert(p.ca)
	p.caFile = filepath.Join(dir, "ca.pem")
	if err := writePEM(p.caFile, "CERTIFICATE", p.ca.Raw); err != nil {
		return nil, err
	}
	for name, sans := range map[string][]string{"server": {"localhost"}, "llama-agent": {sanLlamaAgent}, "fixture-agent": {sanFixtureAgent}, "bound-agent": {sanBoundAgent},
		"gateway": {sanGateway}, "harness": {sanHarness}} {
		var ips []net.IP
		if name == "server" {
			ips = []net.IP{net.ParseIP("127.0.0.1")}
		}
		if err := p.issue(name, p.ca, p.key, sans, ips); err != nil {
			return nil, err
		}
	}
	rogueCA, rogueKey, err := selfSigned("rogue CA")
	if err != nil {
		return nil, err
	}
	if err := p.issue("rogue", rogueCA, rogueKey, []string{sanBoundAgent}, nil); err != nil {
		return nil, err
	}
	p.rogueCAFile = filepath.Join(dir, "rogue-ca.pem")
	if err := writePEM(p.rogueCAFile, "CERTIFICATE", rogueCA.Raw); err != nil {
		return nil, err
	}
	return p, nil
}

func selfSigned(cn string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: cn}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	c, err := x509.ParseCertificate(der)
	return c, key, err
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}

// issue signs a leaf for both server and client use and writes NAME.pem
// and NAME.key.
func (p *pki) issue(name string, ca *x509.Certificate, caKey *ecdsa.PrivateKey, dns []string, ips []net.IP) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: serial(), Subject: pkix.Name{CommonName: name}, DNSNames: dns, IPAddresses: ips,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("chaos: certificate %s: %w", name, err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	files := [2]string{filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+".key")}
	if err := writePEM(files[0], "CERTIFICATE", der); err != nil {
		return err
	}
	if err := writePEM(files[1], "EC PRIVATE KEY", kb); err != nil {
		return err
	}
	p.files[name] = files
	p.certs[name] = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	return nil
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// tlsFlags are the --tls-ca/--tls-cert/--tls-key flags of identity name.
func (p *pki) tlsFlags(name string) []string {
	f := p.files[name]
	return []string{"--tls-ca", p.caFile, "--tls-cert", f[0], "--tls-key", f[1]}
}

// client is an HTTP client for control requests (plain HTTP, or HTTPS
// to the tier) presenting name's certificate ("" for none).
func (p *pki) client(name string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8, DisableCompression: true,
		TLSClientConfig: p.clientTLS(name)}}
}

// clientTLS is a client config that trusts the CA and presents name's
// certificate ("" for none).
func (p *pki) clientTLS(name string) *tls.Config {
	c := &tls.Config{RootCAs: p.pool, MinVersion: tls.VersionTLS12}
	if name != "" {
		c.Certificates = []tls.Certificate{p.certs[name]}
	}
	return c
}
