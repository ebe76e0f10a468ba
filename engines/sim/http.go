package sim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
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
	if n.sleepAPI(ctx, method, path) {
		return
	}
	switch {
	case path == "/health" && method == "GET":
		n.health(ctx)
	case path == "/metrics" && method == "GET":
		n.metrics(ctx)
	case path == "/prometheus/metrics" && method == "GET" && n.cfg.Engine == "trtllm-serve":
		n.metricsText(ctx)
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

// models answers GET /v1/models like vLLM: the base model, then the LoRA
// adapters (the configured ones, and any other currently loaded) with
// the base model as parent.
func (n *Node) models(ctx *fasthttp.RequestCtx) {
	type model struct {
		ID          string  `json:"id"`
		Object      string  `json:"object"`
		Created     int64   `json:"created"`
		OwnedBy     string  `json:"owned_by"`
		Root        string  `json:"root"`
		Parent      *string `json:"parent"`
		MaxModelLen *int    `json:"max_model_len"`
	}
	created := time.Now().Unix()
	mml := 8192
	data := []model{{ID: n.cfg.Model, Object: "model", Created: created, OwnedBy: "switchyard-sim", Root: n.cfg.Model, MaxModelLen: &mml}}
	if n.lora != nil {
		names := append([]string{}, n.cfg.LoRA.Adapters...)
		for _, l := range n.lora.stats().Loaded {
			if !slices.Contains(names, l) {
				names = append(names, l)
			}
		}
		base := n.cfg.Model
		for _, a := range names {
			data = append(data, model{ID: a, Object: "model", Created: created, OwnedBy: "switchyard-sim", Root: a, Parent: &base})
		}
	}
	b, _ := json.Marshal(struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{"list", data})
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
		switch {
		case r.retryAfter > 0:
			ctx.Response.Header.Set("Retry-After", strconv.Itoa(r.retryAfter))
		case r.status == 503 || r.status == 429:
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

// Response headers that expose the modelled prefill, so tests and the
// demo can check the prefix cache without timing anything.
const (
	// CachedTokensHeader is the number of prompt tokens found in the
	// prefix cache.
	CachedTokensHeader = "X-Sim-Cached-Tokens"
	// PrefillHeader is the modelled prefill time before the slowdown
	// factor (a Go duration).
	PrefillHeader = "X-Sim-Prefill"
	// LoRAHeader names the LoRA adapter that served the request.
	LoRAHeader = "X-Sim-LoRA"
)

var vocab = []string{"Hello", " from", " the", " switchyard", " simulated", " engine", ",", " one", " token", " at", " a", " time", "."}

func token(i int) string { return vocab[i%len(vocab)] }

// usage is an OpenAI usage object; prompt_tokens_details.cached_tokens is
// set when the prefix cache is on (vLLM with
// --enable-prompt-tokens-details, OpenAI always).
func (n *Node) usage(p prefill, completion int) map[string]any {
	u := map[string]any{"prompt_tokens": p.tokens, "completion_tokens": completion, "total_tokens": p.tokens + completion}
	if n.cache != nil {
		u["prompt_tokens_details"] = map[string]int{"cached_tokens": p.cached}
	}
	return u
}

func (n *Node) openai(ctx *fasthttp.RequestCtx, chat bool) {
	var req openaiRequest
	if err := json.Unmarshal(ctx.PostBody(), &req); err != nil {
		jsonError(ctx, 400, "BadRequestError", "invalid JSON body: "+err.Error())
		return
	}
	adapter := ""
	if req.Model != "" && req.Model != n.cfg.Model {
		if !n.cfg.LoRA.Serves(req.Model) {
			jsonError(ctx, 404, "NotFoundError", fmt.Sprintf("The model `%s` does not exist.", req.Model))
			return
		}
		adapter = req.Model
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
	var text promptText
	if chat {
		for _, m := range req.Messages {
			text.addMessage(m.Role, m.Content)
		}
	} else {
		text.addRaw(req.Prompt)
	}
	if n.failNow() {
		jsonError(ctx, 500, "InternalServerError", "simulated engine failure")
		return
	}
	if adapter != "" {
		if err := n.acquireLoRA(adapter); err != nil {
			n.refuse(ctx, err)
			return
		}
		ctx.Response.Header.Set(LoRAHeader, adapter)
	}
	releaseLoRA := func() {
		if adapter != "" {
			n.lora.release(adapter)
		}
	}
	if err := n.admit(); err != nil {
		releaseLoRA()
		n.refuse(ctx, err)
		return
	}
	pf := n.plan(text.String())
	ctx.Response.Header.Set(CachedTokensHeader, strconv.Itoa(pf.cached))
	ctx.Response.Header.Set(PrefillHeader, pf.time.String())
	seq := n.reqSeq.Add(1)
	created := time.Now().Unix()
	model := n.cfg.Model
	if adapter != "" {
		model = adapter
	}
	var id, object, chunkObject string
	if chat {
		id, object, chunkObject = fmt.Sprintf("chatcmpl-%s-%d", n.id, seq), "chat.completion", "chat.completion.chunk"
	} else {
		id, object, chunkObject = fmt.Sprintf("cmpl-%s-%d", n.id, seq), "text_completion", "text_completion"
	}
	// cacheReply caches the assistant turn as the next chat turn will
	// render it, as vLLM keeps the generated tokens' KV blocks.
	cacheReply := func(reply string) {
		if n.cache != nil && chat {
			var t promptText
			t.WriteString(pf.text)
			t.addMessage("assistant", mustJSON(reply))
			n.cache.insert(t.String())
		}
	}
	if !req.Stream {
		defer n.release()
		defer releaseLoRA()
		var sb strings.Builder
		if !n.generate(pf, maxTok, func(i int) bool { sb.WriteString(token(i)); return true }) {
			ctx.SetConnectionClose()
			jsonError(ctx, 503, "ServiceUnavailableError", "node stopped")
			return
		}
		cacheReply(sb.String())
		var choice map[string]any
		if chat {
			choice = map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": sb.String()}, "logprobs": nil, "finish_reason": finish}
		} else {
			choice = map[string]any{"index": 0, "text": sb.String(), "logprobs": nil, "finish_reason": finish}
		}
		b, _ := json.Marshal(map[string]any{"id": id, "object": object, "created": created, "model": model, "choices": []any{choice}, "usage": n.usage(pf, maxTok)})
		n.served.Add(1)
		ctx.SetContentType("application/json")
		ctx.SetBody(b)
		return
	}
	// As vLLM's serving_chat.py (chat_completion_stream_generator): no
	// usage in the token chunks nor in the finish chunk; with
	// stream_options.include_usage one more chunk with "choices": [] and
	// the usage, then [DONE].
	includeUsage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	// ModeCut: close the connection half way, as a killed engine would.
	cutAt, conn := -1, ctx.Conn()
	if n.Mode() == ModeCut {
		cutAt = max(maxTok/2, 1)
	}
	ctx.SetContentType("text/event-stream")
	ctx.Response.Header.Set("Cache-Control", "no-cache")
	n.wg.Add(1)
	ctx.SetBodyStreamWriter(func(w *bufio.Writer) {
		defer n.wg.Done()
		defer func() {
			if h := n.testAfterStreamRelease.Load(); h != nil {
				(*h)()
			}
		}()
		defer n.release()
		defer releaseLoRA()
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
		var reply strings.Builder
		ok := n.generate(pf, maxTok, func(i int) bool {
			reply.WriteString(token(i))
			if !send(chunk(map[string]any{"content": token(i)}, token(i), nil)) {
				return false
			}
			if i+1 == cutAt {
				n.cut.Add(1)
				_ = conn.Close() // fasthttp's terminal chunk then fails
				return false
			}
			return true
		})
		if !ok {
			return
		}
		cacheReply(reply.String())
		if !send(chunk(map[string]any{}, "", finish)) {
			return
		}
		if includeUsage {
			if !send(map[string]any{"id": id, "object": chunkObject, "created": created, "model": model, "choices": []any{}, "usage": n.usage(pf, maxTok)}) {
				return
			}
		}
		w.WriteString("data: [DONE]\n\n")
		if w.Flush() == nil {
			n.served.Add(1)
		}
	})
}

func mustJSON(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
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
	var text promptText
	for _, in := range req.Inputs {
		text.addRaw(in.Data)
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
			if r.retryAfter > 0 {
				ctx.Response.Header.Set("Retry-After", strconv.Itoa(r.retryAfter))
			}
		}
		ctx.SetStatusCode(st)
		b, _ := json.Marshal(map[string]string{"error": msg})
		ctx.SetBody(b)
		return
	}
	defer n.release()
	pf := n.plan(text.String())
	var sb strings.Builder
	if !n.generate(pf, tokens, func(i int) bool { sb.WriteString(token(i)); return true }) {
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
//	POST /_sim/fail?mode=healthy|hang|error|slow-start|busy|cut
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
