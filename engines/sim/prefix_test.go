package sim

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// chat posts a chat completion and returns the response's cached tokens
// (header and usage, which must agree), modelled prefill and reply.
func chat(t *testing.T, n *Node, model string, messages []map[string]string, maxTokens int) (cached int, prefill time.Duration, reply string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"model": model, "messages": messages, "max_tokens": maxTokens})
	resp, b := post(t, testCtx(t, 10*time.Second), n.URL()+"/v1/chat/completions", string(body))
	if resp.StatusCode != 200 {
		t.Fatalf("chat: %d %s", resp.StatusCode, b)
	}
	var out struct {
		Choices []struct{ Message struct{ Content string } }
		Usage   struct {
			PromptTokens        int `json:"prompt_tokens"`
			PromptTokensDetails struct {
				CachedTokens int `json:"cached_tokens"`
			} `json:"prompt_tokens_details"`
		}
	}
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	cached, err := strconv.Atoi(resp.Header.Get(CachedTokensHeader))
	if err != nil || cached != out.Usage.PromptTokensDetails.CachedTokens {
		t.Fatalf("cached tokens header %q, usage %d", resp.Header.Get(CachedTokensHeader), out.Usage.PromptTokensDetails.CachedTokens)
	}
	prefill, err = time.ParseDuration(resp.Header.Get(PrefillHeader))
	if err != nil {
		t.Fatal(err)
	}
	return cached, prefill, out.Choices[0].Message.Content
}

// render is the sim's chat prompt text (promptText.addMessage).
func render(messages []map[string]string) string {
	var sb strings.Builder
	for _, m := range messages {
		sb.WriteString(m["role"] + "\n" + m["content"] + "\n")
	}
	return sb.String()
}

// TestPrefixCacheConversation: the second turn of a conversation finds
// the first turn's prompt and the assistant's reply in the cache, so its
// prefill covers only the new tokens; hits and queries reach the vLLM
// and SGLang metrics.
func TestPrefixCacheConversation(t *testing.T) {
	const blockTokens = 4 // 16 bytes per block
	prof := Profile{Prefill: time.Millisecond, PrefillPerToken: time.Millisecond, PerToken: time.Microsecond, MaxTokens: 3}
	for _, engine := range []string{"vllm", "sglang"} {
		t.Run(engine, func(t *testing.T) {
			n := start(t, Config{Model: "m", Engine: engine, Override: prof, PrefixCache: PrefixCacheConfig{Blocks: 1000, BlockTokens: blockTokens}})
			system := strings.Repeat("You are a helpful assistant. ", 8)
			turn1 := []map[string]string{{"role": "system", "content": system}, {"role": "user", "content": "What is a prefix cache?"}}
			cached1, prefill1, reply := chat(t, n, "m", turn1, 3)
			tokens1 := tokenCount(render(turn1))
			if cached1 != 0 || prefill1 != prof.Prefill+time.Duration(tokens1)*prof.PrefillPerToken {
				t.Fatalf("first turn: cached %d prefill %v (tokens %d)", cached1, prefill1, tokens1)
			}
			turn2 := append(append([]map[string]string{}, turn1...), map[string]string{"role": "assistant", "content": reply},
				map[string]string{"role": "user", "content": "And why does it help?"})
			cached2, prefill2, _ := chat(t, n, "m", turn2, 3)
			// Every full block of turn 1 plus its reply is cached.
			prev := len(render(turn1)) + len("assistant\n"+reply+"\n")
			tokens2 := tokenCount(render(turn2))
			if want := prev / (blockTokens * CharsPerToken) * blockTokens; cached2 != want {
				t.Errorf("second turn cached %d tokens, want %d", cached2, want)
			}
			if want := prof.Prefill + time.Duration(tokens2-cached2)*prof.PrefillPerToken; prefill2 != want || prefill2 >= prefill1 {
				t.Errorf("second turn prefill %v, want %v (< first turn's %v)", prefill2, want, prefill1)
			}
			st := n.Stats()
			if st.PrefixHitTokens != int64(cached2) || st.PrefixQueryTokens != int64(tokens1+tokens2) || st.PrefixBlocks == 0 {
				t.Errorf("stats %+v", st)
			}
			m := scrape(t, n, "/metrics")
			switch engine {
			case "vllm":
				if got := value(t, m, "vllm:prefix_cache_hits_total", nil); got != float64(cached2) {
					t.Errorf("prefix_cache_hits_total %g, want %d", got, cached2)
				}
				if got := value(t, m, "vllm:prefix_cache_queries_total", nil); got != float64(tokens1+tokens2) {
					t.Errorf("prefix_cache_queries_total %g, want %d", got, tokens1+tokens2)
				}
			case "sglang":
				want := float64(cached2) / float64(tokens1+tokens2)
				if got := value(t, m, "sglang:cache_hit_rate", nil); got != want {
					t.Errorf("cache_hit_rate %g, want %g", got, want)
				}
			}
		})
	}
}

// TestPrefixCacheLRU: the cache holds Blocks blocks; a prompt's head
// blocks outlive its tail, and other prompts evict it.
func TestPrefixCacheLRU(t *testing.T) {
	n := start(t, Config{Model: "m", Override: Profile{Prefill: time.Millisecond, PerToken: time.Microsecond, MaxTokens: 1},
		PrefixCache: PrefixCacheConfig{Blocks: 4, BlockTokens: 4}})
	complete := func(prompt string) int {
		t.Helper()
		resp, b := post(t, testCtx(t, 10*time.Second), n.URL()+"/v1/completions", `{"model":"m","prompt":`+strconv.Quote(prompt)+`}`)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		c, _ := strconv.Atoi(resp.Header.Get(CachedTokensHeader))
		return c
	}
	a := strings.Repeat("a", 6*16+5) // six full blocks and a bit
	b := strings.Repeat("b", 4*16+5)
	if c := complete(a); c != 0 {
		t.Fatalf("cold: %d cached", c)
	}
	if st := n.Stats(); st.PrefixBlocks != 4 {
		t.Fatalf("%d blocks cached, capacity 4", st.PrefixBlocks)
	}
	if c := complete(a); c != 4*4 {
		t.Errorf("warm: %d tokens cached, want the 4 head blocks (16 tokens)", c)
	}
	complete(b)
	if c := complete(a); c != 0 {
		t.Errorf("after another prompt filled the cache: %d cached, want 0", c)
	}
}

// TestPrefillTimeFollowsCache compares wall time, relatively: a prompt
// of 300 uncached tokens at 1ms each takes longer than the same prompt
// fully cached (a 300ms modelled difference).
func TestPrefillTimeFollowsCache(t *testing.T) {
	n := start(t, Config{Model: "m", Override: Profile{Prefill: time.Millisecond, PrefillPerToken: time.Millisecond, PerToken: time.Microsecond, MaxTokens: 1},
		PrefixCache: PrefixCacheConfig{Blocks: 1000}})
	prompt := `{"model":"m","prompt":"` + strings.Repeat("x", 1200) + `"}`
	timed := func() time.Duration {
		t0 := time.Now()
		resp, b := post(t, testCtx(t, 10*time.Second), n.URL()+"/v1/completions", prompt)
		if resp.StatusCode != 200 {
			t.Fatalf("%d %s", resp.StatusCode, b)
		}
		return time.Since(t0)
	}
	cold, warm := timed(), timed()
	if warm >= cold {
		t.Errorf("cached prompt took %v, uncached %v", warm, cold)
	}
}

func TestPrefixCacheConfigErrors(t *testing.T) {
	for _, c := range []Config{{PrefixCache: PrefixCacheConfig{Blocks: -1}}, {PrefixCache: PrefixCacheConfig{Blocks: 1, BlockTokens: -2}},
		{Override: Profile{PrefillPerToken: -time.Millisecond}}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
