package frontend

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/forward"
	"github.com/switchyard-dev/switchyard/gateway/upstream"
	"github.com/switchyard-dev/switchyard/internal/h2server"
)

// Server is the client port: one listener whose connections are sniffed
// and served by fasthttp (HTTP/1.1) or internal/h2server (h2c prior
// knowledge, or TLS with ALPN h2; gRPC included). Both translate requests
// into the core's view and write its answers back.
type Server struct {
	core       *forward.Core
	lim        config.Limits
	log        *slog.Logger
	tlsConf    *tls.Config
	h1         *fasthttp.Server
	h2         *h2server.Server
	h2done     chan struct{} // closed by Shutdown once the HTTP/2 streams ended
	h2doneOnce sync.Once
	mu         sync.Mutex    // orders Serve's start against Shutdown
	h1ln       *chanListener // set by Serve, under mu

	streamBodies bool // Limits.StreamBodyOver > 0
	headers      headerCache
	conns        connLimits
	relays       relaySet                // streams relayed on hijacked connections (stream.go)
	forward      func(*forward.Exchange) // core.Forward, bound once
	stopping     atomic.Bool
}

// New builds the client port's servers from cfg's listener and limits
// (read at start only: they change on restart).
func New(core *forward.Core, cfg *config.Config, log *slog.Logger) (*Server, error) {
	s := &Server{core: core, lim: cfg.Limits, log: log, h2done: make(chan struct{})}
	s.forward = core.Forward
	// Bodies over 1 MiB are not kept in fasthttp's pools after use: a few
	// large requests must not pin their memory for the life of the
	// process (the pools are fasthttp's, process-wide).
	fasthttp.SetBodySizePoolLimit(pooledBodyLimit, pooledBodyLimit)
	if cfg.Listen.TLSCert != "" {
		// The certificate is re-read when its files change (cert-manager
		// rotates them in place); a pair that does not load keeps the
		// previous one and is logged.
		kp, err := upstream.LoadKeyPair(cfg.Listen.TLSCert, cfg.Listen.TLSKey, "listen.tls_cert", log)
		if err != nil {
			return nil, fmt.Errorf("gateway: tls: %w", err)
		}
		s.tlsConf = &tls.Config{GetCertificate: kp.GetCertificate, NextProtos: []string{"h2", "http/1.1"}, MinVersion: tls.VersionTLS12}
	}
	lim := cfg.Limits
	s.h1 = &fasthttp.Server{
		Handler:                      s.serveHTTP1,
		ErrorHandler:                 s.serveH1Error,
		HeaderReceived:               s.headerReceivedH1,
		ExpectHandler:                s.expectH1,
		Name:                         "switchyard",
		ReadBufferSize:               lim.MaxHeaderBytes,
		WriteBufferSize:              16 << 10,
		ReadTimeout:                  lim.ReadTimeout,
		WriteTimeout:                 lim.WriteTimeout, // deadlines are lazy (deadline.Client): no timer work per answer
		IdleTimeout:                  lim.IdleTimeout,
		MaxRequestBodySize:           lim.MaxBodyBytes,
		NoDefaultServerHeader:        true,
		NoDefaultContentType:         true,
		DisablePreParseMultipartForm: true,
		CloseOnShutdown:              true,
		KeepHijackedConns:            true, // streamed answers (stream.go) close or hand back their connection themselves
		Logger:                       discardLogger{},
	}
	if lim.StreamBodyOver > 0 {
		// fasthttp reads a little ahead and streams the rest; serveHTTP1
		// enforces MaxBodyBytes itself (a declared length over it is
		// refused before any of the body is read: expectH1).
		s.h1.StreamRequestBody = true
		s.h1.MaxRequestBodySize = lim.StreamBodyOver
		s.streamBodies = true
	}
	// HTTP/2 (h2c prior knowledge, and TLS connections that negotiated
	// h2) is served by h2server: one goroutine per connection, handlers
	// on long-lived workers, answers in one write (see its doc).
	s.h2 = &h2server.Server{
		Handler:              http.HandlerFunc(s.serveH2),
		HeaderTooLarge:       http.HandlerFunc(s.serveH2TooLarge),
		MaxConcurrentStreams: uint32(lim.MaxH2Streams),
		MaxHeaderBytes:       lim.MaxHeaderBytes,
		IdleTimeout:          lim.IdleTimeout,
		PrefaceTimeout:       lim.ReadTimeout,
		WriteTimeout:         lim.WriteTimeout,
		Logger:               log,
		NoHeaderMap:          true, // the core reads and relays the fields (RequestFields)
	}
	return s, nil
}

// pooledBodyLimit is the largest request or response body buffer kept
// for reuse.
const pooledBodyLimit = 1 << 20

type discardLogger struct{}

func (discardLogger) Printf(string, ...any) {}

// OpenConnections is the client connections open now; Refused those
// closed at once for a connection cap.
func (s *Server) OpenConnections() (open, refused int64) {
	return s.conns.open.Load(), s.conns.refused.Load()
}

// Serve accepts clients on ln until Shutdown and returns nil then. If a
// server or the listener fails first, Serve stops the others and returns
// the error.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.stopping.Load() {
		// Shutdown came first (the gateway stopped as it started).
		s.mu.Unlock()
		_ = ln.Close()
		return nil
	}
	s.h1ln = newChanListener(ln.Addr())
	s.mu.Unlock()
	errc := make(chan error, 2)
	go func() {
		errc <- s.h1.Serve(s.h1ln)
	}()
	go func() {
		errc <- s.acceptLoop(ctx, ln, s.h1ln)
	}()
	first := <-errc
	if !s.stopping.Load() {
		// Something failed on its own: take the rest down.
		_ = ln.Close()
		s.h1ln.Close()
		_ = s.h2.Close()
		_ = s.h1.Shutdown()
		s.relays.cutAll()
	} else {
		first = nil
	}
	<-errc
	if s.stopping.Load() {
		<-s.h2done // Serve owns the streams: they end before it returns
	}
	if first == nil && !s.stopping.Load() {
		first = errors.New("gateway: client listener closed")
	}
	return first
}

// Shutdown stops accepting on ln (which it closes), tells HTTP/2 clients
// to go away and lets both servers finish the requests they serve within
// ctx; past it, what is left is cut. Serve returns afterwards.
func (s *Server) Shutdown(ctx context.Context, ln net.Listener) {
	s.mu.Lock()
	s.stopping.Store(true)
	h1ln := s.h1ln // nil when Serve has not started: it will not
	s.mu.Unlock()
	_ = ln.Close()
	if h1ln != nil {
		h1ln.Close()
	}
	// GOAWAY to HTTP/2 connections; Shutdown returns once they are idle.
	h2done := make(chan error, 1)
	go func() { h2done <- s.h2.Shutdown(ctx) }()
	_ = s.h1.ShutdownWithContext(ctx)
	s.endRelays(ctx)
	if err := <-h2done; err != nil {
		_ = s.h2.Close() // past the bound: cut what is left
	}
	s.h2doneOnce.Do(func() { close(s.h2done) })
}

// relayGrace bounds the wait for relays whose client connection was cut
// at the shutdown bound (they end at their next write, or within the
// watchdog's period).
const relayGrace = time.Second

// endRelays waits for the streams relayed on hijacked connections to end
// within ctx; past it, it cuts them and waits at most relayGrace more.
func (s *Server) endRelays(ctx context.Context) {
	if s.relays.wait(ctx) {
		return
	}
	s.relays.cutAll()
	gctx, cancel := context.WithTimeout(context.Background(), relayGrace)
	defer cancel()
	if !s.relays.wait(gctx) {
		s.log.Warn("gateway: streams still relayed after shutdown", "streams", s.relays.count())
	}
}
