package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/switchyard-dev/switchyard/bench/loadgen"
)

func runBenchLoad(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench load", "bench load --target URL [flags]", stdout, stderr)
	var cfg loadgen.Config
	var proto, body, bodyFile string
	var asJSON bool
	fs.StringVar(&cfg.Target, "target", "", "loopback target: http://127.0.0.1:PORT/path (http, sse) or 127.0.0.1:PORT (grpc)")
	fs.StringVar(&proto, "proto", "http", "protocol: http, sse or grpc (KServe v2 ModelInfer)")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open-loop Poisson arrival rate in req/s; 0 = closed loop")
	fs.IntVar(&cfg.Concurrency, "concurrency", 16, "closed-loop workers, or the most outstanding open-loop requests")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "run time bound (at most 1h)")
	fs.IntVar(&cfg.Requests, "requests", 0, "request count bound (0 = only the duration)")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-request timeout")
	fs.StringVar(&cfg.Method, "method", "", "HTTP method (default POST with a body, else GET)")
	fs.StringVar(&body, "body", "", "request body")
	fs.StringVar(&bodyFile, "body-file", "", "read the request body from this file")
	fs.StringVar(&cfg.Host, "host", "", "Host header override")
	fs.StringVar(&cfg.Model, "model", "sim", "model name for gRPC")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the open-loop schedule")
	fs.BoolVar(&asJSON, "json", false, "print the result as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg.Protocol = loadgen.Protocol(proto)
	cfg.Body = []byte(body)
	if bodyFile != "" {
		b, err := os.ReadFile(bodyFile)
		if err != nil {
			return fmt.Errorf("body file: %w", err)
		}
		cfg.Body = b
	}
	if cfg.Target == "" {
		return fmt.Errorf("--target URL is required (see switchyard bench load --help): %w", errUsage)
	}
	res, err := loadgen.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if asJSON {
		ms := func(q float64) float64 { return float64(res.Latency.Quantile(q)) / 1e6 }
		out := map[string]any{
			"sent": res.Sent, "ok": res.OK, "errors": res.Errors, "elapsed_s": res.Elapsed.Seconds(), "rps": res.RPS(),
			"latency_ms": map[string]float64{"p50": ms(0.5), "p90": ms(0.9), "p99": ms(0.99), "p99.9": ms(0.999), "max": float64(res.Latency.Max()) / 1e6},
			"late_sends": res.Late,
		}
		if res.TTFT.Count() > 0 {
			out["ttft_ms"] = map[string]float64{"p50": float64(res.TTFT.Quantile(0.5)) / 1e6, "p99": float64(res.TTFT.Quantile(0.99)) / 1e6}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	fmt.Fprintln(stdout, res.Summary())
	return nil
}
