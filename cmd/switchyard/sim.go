package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/switchyard-dev/switchyard/engines/sim"
)

// runSim implements `switchyard sim`: one simulated node (quick form) or
// a fleet from a YAML file; it runs until interrupted.
func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sim", "sim [--listen ADDR --model NAME --profile h100|a10|910b|cpu] [flags]\n       switchyard sim --config FLEET.yaml", stdout, stderr)
	config := fs.String("config", "", "fleet YAML file: defaults and a nodes list with the node flags' settings (see engines/sim/fleet.go); the node flags are then ignored")
	listen := fs.String("listen", "127.0.0.1:8000", "HTTP listen address")
	grpcListen := fs.String("grpc-listen", "", "KServe v2 gRPC listen address (empty: no gRPC)")
	model := fs.String("model", "sim-model", "served model name")
	profile := fs.String("profile", "a10", "card profile: "+strings.Join(sim.ProfileNames(), ", "))
	engine := fs.String("engine", "vllm", "metrics dialect and readiness semantics: "+strings.Join(sim.Engines, ", "))
	id := fs.String("id", "", "node id for the X-Sim-Node header (default: the listen address)")
	slots := fs.Int("slots", 0, "override the profile's concurrency slots")
	cards := fs.Int("cards", 0, "override the profile's card count")
	prefill := fs.Duration("prefill", 0, "override the time to first token")
	perToken := fs.Duration("per-token", 0, "override the time per output token")
	maxTokens := fs.Int("max-tokens", 0, "override the default output length")
	slowdown := fs.Float64("slowdown", 1, "slowdown factor (noisy neighbour)")
	errorRate := fs.Float64("error-rate", 0, "fraction 0..1 of inference requests answered 500")
	startup := fs.Duration("startup-delay", 0, "slow start: not ready for this long")
	tlsCert := fs.String("tls-cert", "", "PEM certificate: serve HTTPS on --listen (gRPC stays plaintext)")
	tlsKey := fs.String("tls-key", "", "PEM private key of --tls-cert")
	logFlags := addLogFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	log, err := logFlags.logger(stderr)
	if err != nil {
		return err
	}
	var fc sim.FleetConfig
	if *config != "" {
		if fc, err = sim.LoadFleet(*config); err != nil {
			return err
		}
	} else {
		fc.Nodes = []sim.FleetNode{{Config: sim.Config{ID: *id, Listen: *listen, GRPCListen: *grpcListen, Model: *model,
			Engine: *engine, Profile: *profile, Slowdown: *slowdown, ErrorRate: *errorRate, StartupDelay: *startup,
			Override: sim.Profile{Slots: *slots, Cards: *cards, Prefill: *prefill, PerToken: *perToken, MaxTokens: *maxTokens}}}}
	}
	if (*tlsCert == "") != (*tlsKey == "") {
		return errors.New("sim: --tls-cert and --tls-key: set both or neither")
	}
	if *tlsCert != "" {
		if *config != "" {
			return errors.New("sim: --tls-cert serves one node; not with --config")
		}
		cert, err := tls.LoadX509KeyPair(*tlsCert, *tlsKey)
		if err != nil {
			return fmt.Errorf("sim: %w", err)
		}
		fc.Nodes[0].TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	fleet, err := sim.StartFleet(sctx, fc)
	cancel()
	if err != nil {
		return err
	}
	defer fleet.Close()
	// One JSON line per node on stdout, for scripts; the log says the same
	// for people.
	enc := json.NewEncoder(stdout)
	for _, n := range fleet.Nodes() {
		log.Info("sim: serving", "id", n.ID(), "model", n.Model(), "http", n.Addr(), "grpc", n.GRPCAddr(), "profile", n.Profile().Name)
		p := n.Profile()
		_ = enc.Encode(map[string]any{"id": n.ID(), "http": n.Addr(), "grpc": n.GRPCAddr(), "model": n.Model(),
			"profile": p.Name, "card": p.Card, "cards": p.Cards, "coefficient": p.Coefficient, "slots": p.SlotCount(),
			"prefill": p.Prefill.String(), "per_token": p.PerToken.String()})
	}
	if r := fleet.Ray(); r != nil {
		_ = enc.Encode(map[string]any{"ray_dashboard": r.DashboardURL(), "http_port": r.HTTPPort(), "metrics_port": r.MetricsPort(),
			"replicas": r.Replicas("")})
	}
	<-ctx.Done()
	log.Info("sim: stopping", "nodes", len(fleet.Nodes()))
	return nil
}
