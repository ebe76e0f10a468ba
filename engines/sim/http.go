package sim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
)

// NodeHeader names the node that answered, on every HTTP response.
const NodeHeader = "X-Sim-Node"

func (n *Node) handle(ctx *fasthttp.RequestCtx) {
	n.wg.Add(1)
	defer n.wg.Done()
	ctx.Response.Header.Set(NodeHeader, n.id)
	if p := ctx.Path(); len(p) > 6 && string(p[:6]) == "/_sim/" {
		n.admin(ctx, string(p[6:]))
		return
	}
	if n.Mode() == ModeHang {
		n.hang()
		if n.Mode() == ModeHang || isClosed(n.closed) {
			// Stopped, or HangTimeout: drop the connection unanswered.
			ctx.SetConnectionClose()
			ctx.Hijack(func(c net.Conn) { _ = c.Close() })
			return
		}
	}
	path := string(ctx.Path())
	method := string(ctx.Method())
	switch {
	case path == "/health" && method == "GET":
		n.health(ctx)
	case path == "/metrics" && method == "GET":
		n.metrics(ctx)
	case path == "/v1/models" && method == "GET":
		n.models(ctx)
	case path == "/v1/chat/completions" && method == "POST":
		n.openai(ctx, true)
	case path == "/v1/completions" && method == "POST":
		n.openai(ctx, false)
	case path == "/v2/health/live" && method == "GET":
		ctx.SetStatusCode(200)
	case path == "/v2/health/ready" && method == "GET":
		n.health(ctx)
		if n.cfg.Engine == "mindie" && ctx.Response.StatusCode() == 200 && n.running.Load() >= int64(cap(n.slots)) {
			ctx.SetStatusCode(503) // MindIE: busy
			ctx.SetBodyString("busy")
		}
	case path == "/v2" && method == "GET":
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"name":"switchyard-sim","version":"1","extensions":[]}`)
	case strings.HasPrefix(path, "/v2/models/"):
		n.kserve(ctx, method, strings.TrimPrefix(path, "/v2/models/"))
	default:
		jsonError(ctx, 404, "NotFoundError", "no route for "+method+" "+path)
	}
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (n *Node) health(ctx *fasthttp.RequestCtx) {
	switch {
	case n.draining.Load():
		ctx.SetStatusCode(503)
		ctx.SetBodyString("draining")
	case !n.ready():
		ctx.SetStatusCode(503)
		ctx.SetBodyString("starting")
	default:
		ctx.SetStatusCode(200)
	}
}

func (n *Node) metrics(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("text/plain; version=0.0.4")
	m := strconv.Quote(n.cfg.Model)
	r, w := n.running.Load(), n.waiting.Load()
	kv := float64(r) / float64(cap(n.slots))
	gauge := func(name, labels string, v any) {
		fmt.Fprintf(ctx, "# TYPE %s gauge\n%s%s %v\n", name, name, labels, v)
	}
	counter := func(name, labels string, v any) {
		fmt.Fprintf(ctx, "# TYPE %s counter\n%s%s %v\n", name, name, labels, v)
	}
	ml := "{model_name=" + m + "}"
	switch n.cfg.Engine {
	case "sglang":
		l := "{model_name=" + m + ",tp_rank=\"0\"}"
		gauge("sglang:num_running_reqs", l, r)
		gauge("sglang:num_queue_reqs", l, w)
		gauge("sglang:token_usage", l, kv)
		gauge("sglang:gen_throughput", l, 0)
	case "tgi":
		gauge("tgi_batch_current_size", "", r)
		gauge("tgi_queue_size", "", w)
		counter("tgi_request_success", "", n.served.Load())
	case "triton":
		l := "{model=" + m + ",version=\"1\"}"
		gauge("nv_inference_pending_request_count", l, w)
		counter("nv_inference_request_success", l, n.served.Load())
		counter("nv_inference_count", l, n.served.Load())
	case "mindie":
		gauge("num_requests_running", ml, r)
		gauge("num_requests_waiting", ml, w)
		gauge("num_requests_swapped", ml, 0)
		gauge("npu_cache_usage_perc", ml, kv)
		counter("request_success_total", ml, n.served.Load())
		counter("generation_tokens_total", ml, n.genTokens.Load())
	default:
		fmt.Fprintf(ctx, "# HELP vllm:num_requests_running Number of requests currently running on GPU.\n")
		gauge("vllm:num_requests_running", ml, r)
		fmt.Fprintf(ctx, "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.\n")
		gauge("vllm:num_requests_waiting", ml, w)
		fmt.Fprintf(ctx, "# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.\n")
		gauge("vllm:gpu_cache_usage_perc", ml, kv)
		counter("vllm:prompt_tokens_total", ml, n.promptTokens.Load())
		counter("vllm:generation_tokens_total", ml, n.genTokens.Load())
		counter("vllm:request_success_total", "{finished_reason=\"length\",model_name="+m+"}", n.served.Load())
	}
	fmt.Fprintf(ctx, "# HELP switchyard_sim_slowdown Current slowdown factor of the simulated node.\n")
	gauge("switchyard_sim_slowdown", "{node="+strconv.Quote(n.id)+"}", n.Slowdown())
}

func (n *Node) models(ctx *fasthttp.RequestCtx) {
	type model struct {
		ID          string  `json:"id"`
		Object      string  `json:"object"`
		Created     int64   `json:"created"`
		OwnedBy     string  `json:"owned_by"`
		Root        string  `json:"root"`
		Parent      *string `json:"parent"`
		MaxModelLen int     `json:"max_model_len"`
	}
	b, _ := json.Marshal(struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{"list", []model{{ID: n.cfg.Model, Object: "model", Created: time.Now().Unix(), OwnedBy: "switchyard-sim", Root: n.cfg.Model, MaxModelLen: 8192}}})
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

func jsonError(ctx *fasthttp.RequestCtx, status int, typ, msg string) {
	b, _ := json.Marshal(map[string]any{"error": map[string]any{"message": msg, "type": typ, "code": status}, "object": "error"})
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

// refuse answers an admission failure.
func (n *Node) refuse(ctx *fasthttp.RequestCtx, err error) {
	var r *errRefused
	if errors.As(err, &r) {
		if r.status == 503 || r.status == 429 {
			ctx.Response.Header.Set("Retry-After", "1")
		}
		jsonError(ctx, r.status, "ServiceUnavailableError", r.msg)
		return
	}
	jsonError(ctx, 503, "ServiceUnavailableError", err.Error())
}

type openaiRequest struct {
	Model    string `json:"model"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Prompt              json.RawMessage `json:"prompt"`
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Stream              bool            `json:"stream"`
	StreamOptions       *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

// countTokens approximates tokens as whitespace-separated words of the
// raw JSON text (strings or content parts), at least 1.
func countTokens(raw []byte) int {
	if len(raw) == 0 {
		return 0
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		s = string(raw)
	}
	return len(strings.Fields(s))
}

var vocab = []string{"Hello", " from", " the", " switchyard", " simulated", " engine", ",", " one", " token", " at", " a", " time", "."}

func token(i int) string { return vocab[i%len(vocab)] }

func (n *Node) openai(ctx *fasthttp.RequestCtx, chat bool) {
	var req openaiRequest
	if err := json.Unmarshal(ctx.PostBody(), &req); err != nil {
		jsonError(ctx, 400, "BadRequestError", "invalid JSON body: "+err.Error())
		return
	}
	if req.Model != "" && req.Model != n.cfg.Model {
		jsonError(ctx, 404, "NotFoundError", fmt.Sprintf("The model `%s` does not exist.", req.Model))
		return
	}
	if chat && len(req.Messages) == 0 {
		jsonError(ctx, 400, "BadRequestError", "messages must not be empty")
		return
	}
	maxTok, finish := n.prof.MaxTokens, "stop"
	for _, p := range []*int{req.MaxTokens, req.MaxCompletionTokens} {
		if p != nil {
			if *p < 1 || *p > 1<<20 {
				jsonError(ctx, 400, "BadRequestError", "max_tokens must be in 1..1048576")
				return
			}
			maxTok, finish = *p, "length"
		}
	}
	prompt := countTokens(req.Prompt)
	for _, m := range req.Messages {
		prompt += countTokens(m.Content)
	}
	if prompt < 1 {
		prompt = 1
	}
	if n.failNow() {
		jsonError(ctx, 500, "InternalServerError", "simulated engine failure")
		return
	}
	if err := n.admit(); err != nil {
		n.refuse(ctx, err)
		return
	}
	n.promptTokens.Add(int64(prompt))
	seq := n.reqSeq.Add(1)
	created := time.Now().Unix()
	model := n.cfg.Model
	var id, object, chunkObject string
	if chat {
		id, object, chunkObject = fmt.Sprintf("chatcmpl-%s-%d", n.id, seq), "chat.completion", "chat.completion.chunk"
	} else {
		id, object, chunkObject = fmt.Sprintf("cmpl-%s-%d", n.id, seq), "text_completion", "text_completion"
	}
	usage := func(c int) map[string]int {
		return map[string]int{"prompt_tokens": prompt, "completion_tokens": c, "total_tokens": prompt + c}
	}
	if !req.Stream {
		defer n.release()
		var sb strings.Builder
		if !n.generate(maxTok, func(i int) bool { sb.WriteString(token(i)); return true }) {
			ctx.SetConnectionClose()
			jsonError(ctx, 503, "ServiceUnavailableError", "node stopped")
			return
		}
		var choice map[string]any
		if chat {
			choice = map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": sb.String()}, "logprobs": nil, "finish_reason": finish}
		} else {
			choice = map[string]any{"index": 0, "text": sb.String(), "logprobs": nil, "finish_reason": finish}
		}
		b, _ := json.Marshal(map[string]any{"id": id, "object": object, "created": created, "model": model, "choices": []any{choice}, "usage": usage(maxTok)})
		n.served.Add(1)
		ctx.SetContentType("application/json")
		ctx.SetBody(b)
		return
	}
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	n.wg.Add(1)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer n.wg.Done()
		defer n.release()
		send := func(v any) bool {
			b, _ := json.Marshal(v)
			w.WriteString("data: ")
			w.Write(b)
			w.WriteString("\n\n")
			return w.Flush() == nil
		}
		chunk := func(delta map[string]any, text string, fin any) map[string]any {
			var c map[string]any
			if chat {
				c = map[string]any{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": fin}
			} else {
				c = map[string]any{"index": 0, "text": text, "logprobs": nil, "finish_reason": fin}
			}
			return map[string]any{"id": id, "object": chunkObject, "created": created, "model": model, "choices": []any{c}}
		}
		if chat && !send(chunk(map[string]any{"role": "assistant", "content": ""}, "", nil)) {
			return
		}
		ok := n.generate(maxTok, func(i int) bool {
			return send(chunk(map[string]any{"content": token(i)}, token(i), nil))
		})
		if !ok {
			return
		}
		last := chunk(map[string]any{}, "", finish)
		last["usage"] = usage(maxTok)
		if !send(last) {
			return
		}
		if includeUsage {
			if !send(map[string]any{"id": id, "object": chunkObject, "created": created, "model": model, "choices": []any{}, "usage": usage(maxTok)}) {
				return
			}
		}
		w.WriteString("data: [DONE]\n\n")
		if w.Flush() == nil {
			n.served.Add(1)
		}
	})
}

// kserve handles /v2/models/{name}[/versions/{v}][/ready|/infer].
func (n *Node) kserve(ctx *fasthttp.RequestCtx, method, rest string) {
	parts := strings.Split(rest, "/")
	name := parts[0]
	version := ""
	parts = parts[1:]
	if len(parts) >= 2 && parts[0] == "versions" {
		version, parts = parts[1], parts[2:]
	}
	_ = version
	action := ""
	if len(parts) == 1 {
		action = parts[0]
	} else if len(parts) > 1 {
		jsonError(ctx, 404, "NotFoundError", "unknown path")
		return
	}
	if name != n.cfg.Model {
		ctx.SetStatusCode(404)
		ctx.SetContentType("application/json")
		b, _ := json.Marshal(map[string]string{"error": fmt.Sprintf("Request for unknown model: '%s' is not found", name)})
		ctx.SetBody(b)
		return
	}
	switch {
	case action == "ready" && method == "GET":
		n.health(ctx)
	case action == "" && method == "GET":
		b, _ := json.Marshal(map[string]any{"name": n.cfg.Model, "versions": []string{"1"}, "platform": "switchyard-sim",
			"inputs":  []any{map[string]any{"name": "text_input", "datatype": "BYTES", "shape": []int{-1}}},
			"outputs": []any{map[string]any{"name": "text_output", "datatype": "BYTES", "shape": []int{-1}}}})
		ctx.SetContentType("application/json")
		ctx.SetBody(b)
	case action == "infer" && method == "POST":
		n.kserveInfer(ctx)
	default:
		jsonError(ctx, 404, "NotFoundError", "unknown path")
	}
}

func (n *Node) kserveInfer(ctx *fasthttp.RequestCtx) {
	var req struct {
		ID         string         `json:"id"`
		Parameters map[string]any `json:"parameters"`
		Inputs     []struct {
			Name     string          `json:"name"`
			Shape    []int64         `json:"shape"`
			Datatype string          `json:"datatype"`
			Data     json.RawMessage `json:"data"`
		} `json:"inputs"`
	}
	if err := json.Unmarshal(ctx.PostBody(), &req); err != nil {
		ctx.SetStatusCode(400)
		b, _ := json.Marshal(map[string]string{"error": "invalid JSON: " + err.Error()})
		ctx.SetBody(b)
		return
	}
	if len(req.Inputs) == 0 {
		ctx.SetStatusCode(400)
		ctx.SetBodyString(`{"error":"inputs must not be empty"}`)
		return
	}
	tokens := n.prof.MaxTokens
	if v, ok := req.Parameters["max_tokens"].(float64); ok && v >= 1 && v <= 1<<20 {
		tokens = int(v)
	}
	prompt := 0
	for _, in := range req.Inputs {
		prompt += countTokens(in.Data)
	}
	if n.failNow() {
		ctx.SetStatusCode(500)
		ctx.SetBodyString(`{"error":"simulated engine failure"}`)
		return
	}
	if err := n.admit(); err != nil {
		var r *errRefused
		st, msg := 503, err.Error()
		if errors.As(err, &r) {
			st = r.status
		}
		ctx.SetStatusCode(st)
		b, _ := json.Marshal(map[string]string{"error": msg})
		ctx.SetBody(b)
		return
	}
	defer n.release()
	n.promptTokens.Add(int64(max(prompt, 1)))
	var sb strings.Builder
	if !n.generate(tokens, func(i int) bool { sb.WriteString(token(i)); return true }) {
		ctx.SetConnectionClose()
		ctx.SetStatusCode(503)
		return
	}
	n.served.Add(1)
	b, _ := json.Marshal(map[string]any{"model_name": n.cfg.Model, "model_version": "1", "id": req.ID,
		"outputs": []any{map[string]any{"name": "text_output", "datatype": "BYTES", "shape": []int{1}, "data": []string{sb.String()}}}})
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

// admin serves the control endpoints, which work in every mode (a hung
// node can still be told to recover):
//
//	GET  /_sim/stats
//	POST /_sim/slowdown?factor=F
//	POST /_sim/error-rate?p=P
//	POST /_sim/fail?mode=healthy|hang|error|slow-start
//	POST /_sim/drain   /_sim/undrain   /_sim/crash
func (n *Node) admin(ctx *fasthttp.RequestCtx, op string) {
	args := ctx.QueryArgs()
	post := ctx.IsPost()
	switch {
	case op == "stats" && ctx.IsGet():
	case op == "slowdown" && post:
		f, err := strconv.ParseFloat(string(args.Peek("factor")), 64)
		if err != nil || !(f > 0) {
			jsonError(ctx, 400, "BadRequestError", "factor must be a number > 0")
			return
		}
		n.SetSlowdown(f)
	case op == "error-rate" && post:
		p, err := strconv.ParseFloat(string(args.Peek("p")), 64)
		if err != nil || p < 0 || p > 1 {
			jsonError(ctx, 400, "BadRequestError", "p must be in 0..1")
			return
		}
		n.SetErrorRate(p)
	case op == "fail" && post:
		m, err := ParseMode(string(args.Peek("mode")))
		if err != nil {
			jsonError(ctx, 400, "BadRequestError", err.Error())
			return
		}
		n.Fail(m)
	case op == "drain" && post:
		n.Drain()
	case op == "undrain" && post:
		n.Undrain()
	case op == "crash" && post:
		ctx.SetStatusCode(202)
		// fasthttp runs the hijack handler after the answer is written.
		ctx.Hijack(func(net.Conn) { n.Crash() })
		return
	default:
		jsonError(ctx, 404, "NotFoundError", "unknown control endpoint")
		return
	}
	b, _ := json.Marshal(n.Stats())
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}
