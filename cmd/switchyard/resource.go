package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/switchyard-dev/switchyard/discovery/resource"
)

func runResource(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("resource", "resource [flags]", stderr)
	def := resource.DefaultConfig()
	listen := fs.String("listen", "127.0.0.1:7100", "host:port for heartbeats (framed and HTTP), peer links and the list API")
	token := fs.String("token", os.Getenv("SWITCHYARD_TOKEN"), "shared bearer token (default $SWITCHYARD_TOKEN; empty disables auth)")
	peers := fs.String("peers", "", "comma-separated host:port of the tier's instances (this one may be included)")
	peerDNS := fs.String("peer-dns", "", "name:port resolved periodically into peers")
	period := fs.Duration("period", def.Period, "agents' heartbeat period")
	missed := fs.Int("missed", def.MissedBeats, "missed heartbeats before a silent node goes offline")
	window := fs.Duration("window", def.Window, "batching window for changes sent to peers (≤100ms)")
	grace := fs.Duration("rehome-grace", def.ReHomeGrace, "how long a lost peer's nodes stay listed while they re-home")
	share := fs.Float64("max-expire-share", def.MaxExpireShare, "largest share of an app's nodes that may expire within the guard window")
	tlsFlags := addTLSFlags(fs, "serve")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg := resource.Config{
		Token: *token, PeerDNS: *peerDNS, Period: *period, MissedBeats: *missed,
		Window: *window, ReHomeGrace: *grace, MaxExpireShare: *share,
		Logger: newLogger(stderr, *logLevel),
	}
	if *peers != "" {
		cfg.Peers = strings.Split(*peers, ",")
	}
	srvTLS, cliTLS, err := tlsFlags.configs()
	if err != nil {
		return err
	}
	cfg.TLS, cfg.PeerTLS = srvTLS, cliTLS
	srv, err := resource.New(cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("resource: %w", err)
	}
	fmt.Fprintf(stdout, "resource %016x listening on %s\n", srv.ID(), ln.Addr())
	err = srv.Serve(ctx, ln)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

// tlsFlags are the optional (m)TLS flags shared by resource and agent.
type tlsFlags struct {
	cert, key, ca *string
	role          string
}

func addTLSFlags(fs interface {
	String(name, value, usage string) *string
}, role string) *tlsFlags {
	return &tlsFlags{
		cert: fs.String("tls-cert", "", "PEM certificate (server certificate, and client certificate for mTLS)"),
		key:  fs.String("tls-key", "", "PEM private key of -tls-cert"),
		ca:   fs.String("tls-ca", "", "PEM CA bundle: verifies clients (mTLS, when serving) and servers (when dialling)"),
		role: role,
	}
}

// configs returns the server-side and client-side TLS configs (nil, nil
// without -tls-cert and -tls-ca).
func (f *tlsFlags) configs() (server, client *tls.Config, err error) {
	if *f.cert == "" && *f.ca == "" {
		return nil, nil, nil
	}
	var certs []tls.Certificate
	if *f.cert != "" {
		c, err := tls.LoadX509KeyPair(*f.cert, *f.key)
		if err != nil {
			return nil, nil, fmt.Errorf("tls: %w", err)
		}
		certs = []tls.Certificate{c}
	}
	var pool *x509.CertPool
	if *f.ca != "" {
		pem, err := os.ReadFile(*f.ca)
		if err != nil {
			return nil, nil, fmt.Errorf("tls: %w", err)
		}
		pool = x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("tls: no certificate in %s", *f.ca)
		}
	}
	client = &tls.Config{Certificates: certs, RootCAs: pool, MinVersion: tls.VersionTLS12}
	if f.role == "serve" {
		if len(certs) == 0 {
			return nil, nil, errors.New("tls: -tls-cert is required to serve TLS")
		}
		server = &tls.Config{Certificates: certs, MinVersion: tls.VersionTLS12}
		if pool != nil {
			server.ClientCAs, server.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	return server, client, nil
}
