package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/switchyard-dev/switchyard/discovery/resource"
)

func runResource(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("resource", "resource [flags]", stdout, stderr)
	def := resource.DefaultConfig()
	listen := fs.String("listen", "127.0.0.1:7100", "host:port for heartbeats (framed and HTTP), peer links and the list API")
	token := secretFileVar(fs, "token", "SWITCHYARD_TOKEN", "shared bearer token, a quick start: it grants FULL access (announce any node of any app, link as a peer, read every list). With --credentials, leave it unset to require scoped credentials. No token and no --credentials disables authentication (local demos only)")
	creds := fs.String("credentials", "", "YAML file of scoped credentials: agent (bound to apps, node id prefixes, address CIDRs), peer and reader tokens stored as SHA-256, or TLS client identities (SAN); per-app capacity caps and node limits. Reloaded when it changes and on SIGHUP")
	peerToken := secretFileVar(fs, "peer-token", "SWITCHYARD_PEER_TOKEN", "token this instance presents to its peers (default $SWITCHYARD_PEER_TOKEN, else the shared token)")
	peers := fs.String("peers", "", "comma-separated host:port of the tier's instances (this one may be included)")
	peerDNS := fs.String("peer-dns", "", "name:port resolved periodically into --peers")
	period := fs.Duration("period", def.Period, "agents' heartbeat period")
	missed := fs.Int("missed", def.MissedBeats, "missed heartbeats before a silent node goes offline")
	window := fs.Duration("window", def.Window, "batching window for changes sent to peers, at most 100ms")
	grace := fs.Duration("rehome-grace", def.ReHomeGrace, "how long a lost peer's nodes stay listed while they re-home")
	share := fs.Float64("max-expire-share", def.MaxExpireShare, "largest share of an app's nodes that may expire within the guard window")
	maxNodes := fs.Int("max-nodes-per-app", def.MaxNodesPerApp, "nodes an app may list (the credentials file may set it per app)")
	maxApps := fs.Int("max-apps", def.MaxApps, "apps this instance holds for its agents and readers")
	maxSubs := fs.Int("max-subscribers", def.MaxSubscribersPerApp, "subscribers (gateways) per app")
	skew := fs.Duration("max-clock-skew", def.MaxClockSkew, "how far ahead of this clock a heartbeat's incarnation may be")
	tlsFlags := addTLSFlags(fs, "serve")
	logFlags := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := logFlags.logger(stderr)
	if err != nil {
		return err
	}
	shared, err := token.Resolve()
	if err != nil {
		return err
	}
	peerTok, err := peerToken.Resolve()
	if err != nil {
		return err
	}
	bv := buildInfo()
	cfg := resource.Config{
		Token: shared, PeerToken: peerTok, CredentialsFile: *creds,
		PeerDNS: *peerDNS, Period: *period, MissedBeats: *missed,
		Window: *window, ReHomeGrace: *grace, MaxExpireShare: *share,
		MaxNodesPerApp: *maxNodes, MaxApps: *maxApps, MaxSubscribersPerApp: *maxSubs, MaxClockSkew: *skew,
		Logger: log, Version: bv.Version, Revision: bv.Commit,
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
		return fmt.Errorf("listen: %w", err)
	}
	if *creds != "" {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		hctx, stop := context.WithCancel(ctx)
		defer stop()
		go func() { // owned by runResource: ends with hctx
			for {
				select {
				case <-hctx.Done():
					return
				case <-hup:
					_ = srv.ReloadCredentials() // logs the outcome
				}
			}
		}()
	}
	log.Info("resource: listening", "addr", ln.Addr().String(), "id", fmt.Sprintf("%016x", srv.ID()), "peers", len(cfg.Peers), "tls", srvTLS != nil)
	err = srv.Serve(ctx, ln)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	if err != nil {
		log.Error("resource: stopped", "err", err)
		return err
	}
	log.Info("resource: stopped")
	return nil
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
		key:  fs.String("tls-key", "", "PEM private key of --tls-cert"),
		ca:   fs.String("tls-ca", "", "PEM CA bundle: verifies clients (mTLS, when serving) and servers (when dialling)"),
		role: role,
	}
}

// configs returns the server-side and client-side TLS configs (nil, nil
// without --tls-cert and --tls-ca).
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
			return nil, nil, errors.New("--tls-cert is required to serve TLS")
		}
		server = &tls.Config{Certificates: certs, MinVersion: tls.VersionTLS12}
		if pool != nil {
			server.ClientCAs, server.ClientAuth = pool, tls.RequireAndVerifyClientCert
		}
	}
	return server, client, nil
}
