package gateway

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	"github.com/switchyard-dev/switchyard/engines/kserve"
)

// testCA issues certificates for loopback servers and for clients.
type testCA struct {
	t    *testing.T
	key  *ecdsa.PrivateKey
	cert *x509.Certificate
	der  []byte
	dir  string
}

var serial = struct {
	sync.Mutex
	n int64
}{n: 100}

func nextSerial() *big.Int {
	serial.Lock()
	defer serial.Unlock()
	serial.n++
	return big.NewInt(serial.n)
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: "switchyard test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{t: t, key: key, cert: cert, der: der, dir: t.TempDir()}
}

// caFile writes the CA's certificate and returns its path.
func (ca *testCA) caFile() string {
	p := filepath.Join(ca.dir, "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.der}), 0o600); err != nil {
		ca.t.Fatal(err)
	}
	return p
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue makes a certificate for cn (a server certificate for 127.0.0.1
// and localhost, or a client one) and returns its PEM cert and key.
func (ca *testCA) issue(cn string, server bool) (certPEM, keyPEM []byte) {
	ca.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		ca.t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: nextSerial(), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
		tmpl.DNSNames = []string{"localhost"}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		ca.t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// tlsPair issues a certificate into files (rewritten in place when the
// paths exist) and returns the paths.
func (ca *testCA) writePair(name, cn string, server bool) (certFile, keyFile string) {
	ca.t.Helper()
	c, k := ca.issue(cn, server)
	certFile, keyFile = filepath.Join(ca.dir, name+".pem"), filepath.Join(ca.dir, name+"-key.pem")
	// Key first, then certificate: a reader between the two writes sees
	// a mismatched pair, which must keep the previous one.
	if err := os.WriteFile(keyFile, k, 0o600); err != nil {
		ca.t.Fatal(err)
	}
	if err := os.WriteFile(certFile, c, 0o600); err != nil {
		ca.t.Fatal(err)
	}
	return certFile, keyFile
}

func (ca *testCA) serverTLS(cn string) *tls.Config {
	ca.t.Helper()
	c, k := ca.issue(cn, true)
	pair, err := tls.X509KeyPair(c, k)
	if err != nil {
		ca.t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
}

// TestUpstreamTLS: a route whose node is https:// speaks TLS to it,
// verifying it against the route's CA bundle and presenting the route's
// client certificate (the node requires one: mTLS); the certificate is
// re-read when its files are rotated, a rotation that does not load keeps
// the previous one, and the health probes pass over the same TLS. A route
// without the client certificate, or without the CA, is refused by the
// node's handshake or its own verification: 502.
func TestUpstreamTLS(t *testing.T) {
	ca := newTestCA(t)
	be := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		cn := ""
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		w.Header().Set("X-Client-CN", cn)
		w.Header().Set("Connection", "close") // every request dials: rotations show at once
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"tls":true}`)
	}))
	be.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused routes' handshakes
	be.TLS = ca.serverTLS("node")
	be.TLS.ClientAuth = tls.RequireAndVerifyClientCert
	be.TLS.ClientCAs = ca.pool()
	be.StartTLS()
	t.Cleanup(be.Close)
	nodeURL := be.URL // https://127.0.0.1:PORT

	certFile, keyFile := ca.writePair("client", "gateway-one", false)
	route := func(name string, tc *UpstreamTLS) RouteConfig {
		rc := staticRoute(name, nodeURL)
		rc.TLS = tc
		return rc
	}
	cfg := testConfig(
		route("mtls", &UpstreamTLS{CAFile: ca.caFile(), CertFile: certFile, KeyFile: keyFile}),
		route("nocert", &UpstreamTLS{CAFile: ca.caFile()}),
		route("noca", nil), // implied by https://: the system roots, which do not know the test CA
	)
	for i := range cfg.Routes {
		cfg.Routes[i].HealthCheck.Interval = 50 * time.Millisecond
		cfg.Routes[i].Retries.Attempts = -1
	}
	gw := startGateway(t, cfg)
	if cfg.Routes[2].TLS == nil {
		t.Fatal("an https:// node did not imply the route's tls block")
	}
	c := testClient()
	ask := func(model string) (int, string, string) {
		t.Helper()
		resp, body := post(t, c, gw.url("/v1/completions"), `{"model":"`+model+`"}`)
		return resp.StatusCode, resp.Header.Get("X-Client-CN"), string(body)
	}
	if st, cn, body := ask("mtls"); st != 200 || cn != "gateway-one" {
		t.Fatalf("mTLS route: %d, client %q: %s", st, cn, body)
	}
	// Rotation in place (as cert-manager does): the next connection
	// presents the new certificate.
	ca.writePair("client", "gateway-two-rotated", false)
	waitFor(t, 5*time.Second, "the rotated client certificate", func() bool {
		st, cn, _ := ask("mtls")
		return st == 200 && cn == "gateway-two-rotated"
	})
	// A broken rotation keeps the last good pair.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if st, cn, body := ask("mtls"); st != 200 || cn != "gateway-two-rotated" {
			t.Fatalf("after a broken rotation: %d, client %q: %s", st, cn, body)
		}
	}
	for _, model := range []string{"nocert", "noca"} {
		if st, _, body := ask(model); st != http.StatusBadGateway {
			t.Errorf("route %s: %d %s, want 502", model, st, body)
		}
	}
	// The health probes speak the route's TLS, client certificate
	// included: the node is probed healthy over https.
	r := gw.g.core.Routes().Route("mtls")
	id := r.Table().Endpoint(0).ID()
	waitFor(t, 5*time.Second, "an https health probe to pass", func() bool {
		st, ok := r.Health().Status(id)
		return ok && st.LastProbe == "ok" && strings.HasPrefix(st.Check, "GET https://")
	})
	if st, _ := r.Health().Status(id); !st.Healthy || st.Excluded {
		t.Fatalf("health %+v", st)
	}
}

// TestUpstreamGRPCOverTLS: a grpcs:// node gets gRPC over HTTP/2 with TLS
// (ALPN h2), verified against the route's CA.
func TestUpstreamGRPCOverTLS(t *testing.T) {
	ca := newTestCA(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(ca.serverTLS("grpc-node"))), grpc.ForceServerCodecV2(kserve.Codec{}),
		grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
			var in []byte
			if err := ss.RecvMsg(&in); err != nil {
				return err
			}
			_ = ss.SetHeader(metadata.Pairs("x-node", "tls"))
			return ss.SendMsg(append([]byte("tls:"), in...))
		}))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	rc := staticRoute("m", "grpcs://"+ln.Addr().String())
	rc.TLS = &UpstreamTLS{CAFile: ca.caFile()}
	rc.HealthCheck.Disable = true // a gRPC-only port
	gw := startGateway(t, testConfig(rc))
	cc := grpcClient(t, gw.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 5 {
		var out []byte
		var hdr metadata.MD
		if err := cc.Invoke(ctx, mInfer, kserve.InferRequest{ModelName: "m"}.Marshal(), &out, grpc.Header(&hdr)); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if !bytes.HasPrefix(out, []byte("tls:")) || hdr.Get("x-node")[0] != "tls" {
			t.Fatalf("call %d: %q %v", i, out, hdr)
		}
	}
}

// TestListenerCertReload: the client listener's certificate is re-read
// when its files change; files that do not load keep the previous one
// (and the gateway says so in its log).
func TestListenerCertReload(t *testing.T) {
	ca := newTestCA(t)
	be := backend(t, "b", nil)
	cfg := testConfig(staticRoute("m", be.URL))
	cfg.Listen.TLSCert, cfg.Listen.TLSKey = ca.writePair("listener", "gateway-one", true)
	var logs syncLog
	g, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gw := serveOn(t, g, cl)
	served := func() string {
		t.Helper()
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", gw.addr,
			&tls.Config{RootCAs: ca.pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if cn := served(); cn != "gateway-one" {
		t.Fatalf("served %q", cn)
	}
	ca.writePair("listener", "gateway-two-rotated", true)
	if cn := served(); cn != "gateway-two-rotated" {
		t.Fatalf("after rotation served %q", cn)
	}
	if err := os.WriteFile(cfg.Listen.TLSCert, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cn := served(); cn != "gateway-two-rotated" {
		t.Fatalf("after a broken rotation served %q", cn)
	}
	if !strings.Contains(logs.String(), "keeping the previous certificate") || !strings.Contains(logs.String(), "listen.tls_cert") {
		t.Errorf("the broken rotation was not logged:\n%s", logs.String())
	}
	// An HTTPS request end to end with the new certificate.
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.pool(), ServerName: "localhost", MinVersion: tls.VersionTLS12}}}
	resp, err := hc.Post("https://"+gw.addr+"/v1/completions", "application/json", strings.NewReader(`{"model":"m"}`))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Node") != "b" {
		t.Fatalf("HTTPS request: %d from %q", resp.StatusCode, resp.Header.Get("X-Node"))
	}
}

// syncLog is a log sink safe for concurrent writes.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
