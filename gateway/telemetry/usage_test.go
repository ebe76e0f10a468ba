package telemetry

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/engines/sim"
	"github.com/switchyard-dev/switchyard/gateway/openai"
)

// TestTokensFromEngineUsage wires the pieces as the core will: requests to
// a simulated engine (vLLM's shapes), streamed ones asked for usage by
// RewriteRequest and relayed through openai.Reader with the series as its
// TokenTimer, buffered ones read with ParseResponse. The tokens in the
// scrape equal the sum of the usage the engine reported (read here with
// encoding/json), and every stream has one time to first token and one
// inter-token time per further output event.
func TestTokensFromEngineUsage(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node, err := sim.Start(ctx, sim.Config{Listen: "127.0.0.1:0", Model: "sim-model", Profile: "h100",
		Override: sim.Profile{Prefill: time.Millisecond, PerToken: time.Millisecond, MaxTokens: 5}})
	if err != nil {
		t.Fatal(err)
	}
	defer node.Close()
	m, err := NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown(ctx)
	x := m.Route("r").Models([]string{"sim-model"})
	nd := m.Node("r", node.ID())
	defer m.ReleaseNode(nd)

	var wantIn, wantOut int64
	streams, outputEvents := 0, 0
	var rd openai.Reader
	var timer TokenTimes
	for i, body := range []string{
		`{"model":"sim-model","messages":[{"role":"user","content":"one"}],"stream":true}`,
		`{"model":"sim-model","messages":[{"role":"user","content":"two two"}],"stream":true,"max_tokens":3}`,
		`{"model":"sim-model","prompt":"three three three","stream":true}`,
		`{"model":"sim-model","messages":[{"role":"user","content":"four"}]}`,
		`{"model":"sim-model","prompt":"five"}`,
	} {
		path := "/v1/chat/completions"
		if bytes.Contains([]byte(body), []byte(`"prompt"`)) {
			path = "/v1/completions"
		}
		sent, rw, err := openai.RewriteRequest(nil, []byte(body), openai.Rewrite{IncludeUsage: true})
		if err != nil {
			t.Fatal(err)
		}
		if !rw.Changed {
			sent = []byte(body)
		}
		start := time.Now()
		req, _ := http.NewRequestWithContext(ctx, "POST", node.URL()+path, bytes.NewReader(sent))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		ms := x.Lookup([]byte("sim-model"))
		var u openai.Usage
		var raw []byte
		if rw.Stream {
			streams++
			timer = TokenTimes{Model: ms, Node: nd}
			var tee bytes.Buffer
			rd.Reset(io.TeeReader(resp.Body, &tee), openai.StreamOptions{StripUsage: rw.Usage == openai.UsageAdded, Start: start, Timer: &timer}, nil)
			client, err := io.ReadAll(&rd)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(client, []byte(`"usage"`)) {
				t.Fatalf("request %d: the client saw the usage event", i)
			}
			u, raw = rd.Usage(), tee.Bytes()
			_, _, _, out := rd.Counts()
			outputEvents += out
		} else {
			raw, err = io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			r, err := openai.ParseResponse(raw)
			if err != nil {
				t.Fatal(err)
			}
			u = r.Usage
		}
		resp.Body.Close()
		ms.Observe(resp.StatusCode, time.Since(start))
		nd.Observe(resp.StatusCode, time.Since(start))
		ms.Tokens(u.PromptTokens, u.CompletionTokens)
		ms.Tenant("team-a").Add(u.PromptTokens, u.CompletionTokens)
		in, out := engineUsage(t, raw)
		if in == 0 || out == 0 {
			t.Fatalf("request %d: the engine reported no usage:\n%s", i, raw)
		}
		wantIn += in
		wantOut += out
	}
	fams := scrape(t, m)
	tokens := series(t, fams, "switchyard_gateway_tokens_total")
	if in, out := value(tokens["model=sim-model,route=r,type=input"]), value(tokens["model=sim-model,route=r,type=output"]); in != float64(wantIn) || out != float64(wantOut) {
		t.Fatalf("tokens_total input %v output %v; the engine reported %d and %d", in, out, wantIn, wantOut)
	}
	tenant := series(t, fams, "switchyard_gateway_tenant_tokens_total")
	if v := value(tenant["model=sim-model,route=r,tenant=team-a,type=output"]); v != float64(wantOut) {
		t.Fatalf("tenant output tokens %v, want %d", v, wantOut)
	}
	ttft := series(t, fams, "switchyard_gateway_time_to_first_token_seconds")["model=sim-model,route=r"].GetHistogram()
	itl := series(t, fams, "switchyard_gateway_inter_token_latency_seconds")["model=sim-model,route=r"].GetHistogram()
	if ttft.GetSampleCount() != uint64(streams) || itl.GetSampleCount() != uint64(outputEvents-streams) || ttft.GetSampleSum() <= 0 {
		t.Fatalf("TTFT count %d sum %v, ITL count %d; %d streams with %d output events", ttft.GetSampleCount(), ttft.GetSampleSum(), itl.GetSampleCount(), streams, outputEvents)
	}
	nodeTTFT := series(t, fams, "switchyard_gateway_node_time_to_first_token_seconds")["node="+node.ID()+",route=r"]
	if nodeTTFT == nil || nodeTTFT.GetSummary().GetSampleCount() != uint64(streams) {
		t.Fatalf("node TTFT %v", nodeTTFT)
	}
}

// engineUsage sums the usage objects in a buffered answer or an event
// stream, decoded with encoding/json.
func engineUsage(t *testing.T, raw []byte) (in, out int64) {
	t.Helper()
	type usage struct {
		Usage *struct {
			Prompt     int64 `json:"prompt_tokens"`
			Completion int64 `json:"completion_tokens"`
		} `json:"usage"`
	}
	docs := [][]byte{raw}
	if bytes.HasPrefix(raw, []byte("data: ")) {
		docs = nil
		for _, ev := range bytes.Split(raw, []byte("\n\n")) {
			if d, ok := bytes.CutPrefix(ev, []byte("data: ")); ok && d[0] == '{' {
				docs = append(docs, d)
			}
		}
	}
	for _, d := range docs {
		var u usage
		if err := json.Unmarshal(d, &u); err != nil {
			t.Fatalf("%v: %s", err, d)
		}
		if u.Usage != nil {
			in += u.Usage.Prompt
			out += u.Usage.Completion
		}
	}
	return in, out
}
