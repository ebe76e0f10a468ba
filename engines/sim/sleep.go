package sim

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/valyala/fasthttp"
)

// vLLM's sleep mode (issue 13), in the vllm dialect only. The endpoints
// are vLLM's dev-mode ones (served with VLLM_SERVER_DEV_MODE=1),
// vllm-project/vllm vllm/entrypoints/serve/dev/sleep/api_router.py @
// e7a47b821ef469bb455f75b4129eb365bb6ab9eb:
//
//   - POST /sleep?level=1|2 (default 1) → 200, empty body;
//   - POST /wake_up → 200, empty body (the tags parameter is accepted
//     and ignored: everything wakes);
//   - GET /is_sleeping → {"is_sleeping": bool}.
//
// The metric is vllm:engine_sleep_state, a gauge labelled model_name,
// engine and sleep_state, one series per state and engine: awake 1 when
// awake, 0 when sleeping; weights_offloaded 1 at sleep level 1;
// discard_all 1 at level 2 (vllm/v1/metrics/loggers.py,
// PrometheusStatLogger.__init__ and record_sleep_state, the version
// engines/dialects.go cites).
//
// What the sim chooses where vLLM leaves room: requests already running
// finish (vLLM's default mode=abort would abort them); new inference
// requests are refused with 503 "the engine is sleeping" (HTTP) or
// Unavailable (gRPC) until woken; /health keeps answering 200, as vLLM's
// does (engines/dialects.go, the vllm Spec's Notes).

// Sleep puts the node's engine to sleep at level 1 (weights offloaded) or
// 2 (weights and KV cache discarded); 0 wakes it (WakeUp). Other levels
// are an error.
func (n *Node) Sleep(level int) error {
	if level < 0 || level > 2 {
		return fmt.Errorf("sim: sleep level must be 1 or 2, got %d", level)
	}
	n.sleepLevel.Store(int32(level))
	return nil
}

// WakeUp wakes the node's engine from sleep mode.
func (n *Node) WakeUp() { n.sleepLevel.Store(0) }

// SleepLevel is the engine's sleep level: 0 awake, 1 or 2 asleep.
func (n *Node) SleepLevel() int { return int(n.sleepLevel.Load()) }

// sleepAPI answers vLLM's sleep-mode endpoints; false when path is not
// one of them (or the dialect has no sleep mode).
func (n *Node) sleepAPI(ctx *fasthttp.RequestCtx, method, path string) bool {
	if n.cfg.Engine != "vllm" {
		return false
	}
	switch {
	case path == "/sleep" && method == "POST":
		level := 1
		if v := ctx.QueryArgs().Peek("level"); len(v) > 0 {
			l, err := strconv.Atoi(string(v))
			if err != nil || l < 1 || l > 2 {
				jsonError(ctx, 400, "BadRequestError", "level must be 1 or 2")
				return true
			}
			level = l
		}
		_ = n.Sleep(level)
		ctx.SetStatusCode(200)
	case path == "/wake_up" && method == "POST":
		n.WakeUp()
		ctx.SetStatusCode(200)
	case path == "/is_sleeping" && method == "GET":
		b, _ := json.Marshal(map[string]bool{"is_sleeping": n.SleepLevel() > 0})
		ctx.SetContentType("application/json")
		ctx.SetBody(b)
	default:
		return false
	}
	return true
}

// sleepStates are vllm:engine_sleep_state's series for a sleep level, in
// vLLM's order.
func sleepStates(level int) [3]struct {
	state string
	v     float64
} {
	b := func(ok bool) float64 {
		if ok {
			return 1
		}
		return 0
	}
	return [3]struct {
		state string
		v     float64
	}{{"awake", b(level == 0)}, {"weights_offloaded", b(level == 1)}, {"discard_all", b(level == 2)}}
}
