package openai

import (
	"encoding/json"
	"errors"
	"testing"
)

// TestParseResponseSim: buffered chat and completions answers of the
// simulated engine (with its prefix cache on: cached_tokens), read
// against encoding/json's decode of the same bytes.
func TestParseResponseSim(t *testing.T) {
	n := startSim(t, "sim-model")
	for _, tc := range []struct{ path, body string }{
		{"/v1/chat/completions", `{"model":"sim-model","messages":[{"role":"user","content":"hello"}],"max_tokens":3}`},
		{"/v1/completions", `{"model":"sim-model","prompt":"hello"}`},
	} {
		b := post(t, n, tc.path, []byte(tc.body))
		var ref struct {
			Choices []struct {
				FinishReason string `json:"finish_reason"`
			} `json:"choices"`
			Usage struct {
				Prompt     int64 `json:"prompt_tokens"`
				Completion int64 `json:"completion_tokens"`
				Total      int64 `json:"total_tokens"`
			} `json:"usage"`
		}
		if err := json.Unmarshal(b, &ref); err != nil {
			t.Fatal(err)
		}
		r, err := ParseResponse(b)
		if err != nil {
			t.Fatalf("%s: %v\n%s", tc.path, err, b)
		}
		u := r.Usage
		if !u.Found || u.PromptTokens != ref.Usage.Prompt || u.CompletionTokens != ref.Usage.Completion || u.TotalTokens != ref.Usage.Total || u.PromptTokens == 0 {
			t.Fatalf("%s: usage %+v, encoding/json %+v", tc.path, u, ref.Usage)
		}
		if r.Finish.Len() != 1 || r.Finish.At(0).String() != ref.Choices[0].FinishReason {
			t.Fatalf("%s: finish %v, encoding/json %v", tc.path, r.Finish, ref.Choices)
		}
	}
}

// TestParseResponse: the usage and finish reasons of answers shaped as
// vLLM and OpenAI write them, and of bodies built to mislead a scanner
// that does not follow JSON's structure.
func TestParseResponse(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   string
		want   Usage
		finish []FinishReason
		err    error
	}{
		{"vllm chat", `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi","tool_calls":[]},"logprobs":null,"finish_reason":"stop","stop_reason":null}],"usage":{"prompt_tokens":10,"total_tokens":15,"completion_tokens":5,"prompt_tokens_details":null},"prompt_logprobs":null}`,
			Usage{PromptTokens: 10, CompletionTokens: 5, TotalTokens: 15, Found: true}, []FinishReason{FinishStop}, nil},
		{"cached and reasoning", `{"choices":[],"usage":{"prompt_tokens":100,"completion_tokens":20,"total_tokens":120,"prompt_tokens_details":{"cached_tokens":80},"completion_tokens_details":{"reasoning_tokens":5}}}`,
			Usage{PromptTokens: 100, CompletionTokens: 20, TotalTokens: 120, CachedTokens: 80, ReasoningTokens: 5, Found: true}, nil, nil},
		{"embeddings", `{"id":"embd-1","object":"list","created":1,"model":"e5","data":[{"index":0,"object":"embedding","embedding":[0.1,-0.2]}],"usage":{"prompt_tokens":8,"total_tokens":8,"completion_tokens":0,"prompt_tokens_details":null}}`,
			Usage{PromptTokens: 8, TotalTokens: 8, Found: true}, nil, nil},
		{"n=3", `{"choices":[{"finish_reason":"length"},{"finish_reason":null},{"finish_reason":"stop"},7,{"finish_reason":"content_filter"}]}`,
			Usage{}, []FinishReason{FinishLength, FinishStop, FinishContentFilter}, nil},
		{"no usage", `{"choices":[{"finish_reason":"abort"}]}`, Usage{}, []FinishReason{FinishAbort}, nil},
		{"usage null", `{"usage":null}`, Usage{}, nil, nil},
		{"usage not an object", `{"usage":[1,2]}`, Usage{}, nil, nil},
		{"usage in a string", `{"note":"\"usage\":{\"prompt_tokens\":5}","choices":[{"message":{"content":"{\"usage\": {\"total_tokens\": 9}}"}}]}`, Usage{}, nil, nil},
		{"usage nested", `{"data":{"usage":{"prompt_tokens":5}},"x":[{"usage":{"prompt_tokens":6}}]}`, Usage{}, nil, nil},
		{"escaped key", `{"us\u0061ge":{"prompt_tok\u0065ns":4}}`, Usage{PromptTokens: 4, Found: true}, nil, nil},
		{"escaped reason", `{"choices":[{"finish_reason":"\u0073top"}]}`, Usage{}, []FinishReason{FinishStop}, nil},
		{"case matters", `{"Usage":{"prompt_tokens":4}}`, Usage{}, nil, nil},
		{"repeated usage keeps the last", `{"usage":{"prompt_tokens":4},"usage":{"prompt_tokens":7,"prompt_tokens":8}}`, Usage{PromptTokens: 8, Found: true}, nil, nil},
		{"repeated usage, last null", `{"usage":{"prompt_tokens":4},"usage":null}`, Usage{}, nil, nil},
		{"counts that are not integers", `{"usage":{"prompt_tokens":1.5,"completion_tokens":-2,"total_tokens":"3","prompt_tokens_details":{"cached_tokens":1e2}}}`, Usage{Found: true}, nil, nil},
		{"-0 and big", `{"usage":{"prompt_tokens":-0,"completion_tokens":9223372036854775807,"total_tokens":9223372036854775808}}`, Usage{CompletionTokens: 9223372036854775807, Found: true}, nil, nil},
		{"whitespace", " \n{ \"usage\" : { \"prompt_tokens\" : 2 } } \t", Usage{PromptTokens: 2, Found: true}, nil, nil},
		{"not an object", `[{"usage":{"prompt_tokens":2}}]`, Usage{}, nil, ErrNotJSON},
		{"trailing data", `{"usage":{"prompt_tokens":2}} {}`, Usage{}, nil, ErrNotJSON},
		{"unterminated", `{"usage":{"prompt_tokens":2}`, Usage{}, nil, ErrNotJSON},
		{"bad escape", `{"x":"\q","usage":{"prompt_tokens":2}}`, Usage{}, nil, ErrNotJSON},
		{"control character", "{\"x\":\"a\x01\"}", Usage{}, nil, ErrNotJSON},
		{"empty", ``, Usage{}, nil, ErrNotJSON},
		{"error answer", `{"object":"error","message":"The model does not exist.","type":"NotFoundError","param":null,"code":404}`, Usage{}, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ParseResponse([]byte(tc.body))
			if !errors.Is(err, tc.err) {
				t.Fatalf("error %v, want %v", err, tc.err)
			}
			if r.Usage != tc.want {
				t.Fatalf("usage %+v, want %+v", r.Usage, tc.want)
			}
			var fin []FinishReason
			for i := 0; i < r.Finish.Len(); i++ {
				fin = append(fin, r.Finish.At(i))
			}
			if !equalReasons(fin, tc.finish) {
				t.Fatalf("finish %v, want %v", fin, tc.finish)
			}
		})
	}
}

// TestFinishReasonsBounded: more choices than MaxFinishReasons keep the
// first ones.
func TestFinishReasonsBounded(t *testing.T) {
	body := []byte(`{"choices":[`)
	for i := 0; i < MaxFinishReasons+3; i++ {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, `{"finish_reason":"length"}`...)
	}
	body = append(body, `]}`...)
	r, err := ParseResponse(body)
	if err != nil || r.Finish.Len() != MaxFinishReasons || r.Finish.At(MaxFinishReasons-1) != FinishLength {
		t.Fatalf("%v %v", r.Finish, err)
	}
}

func TestFinishReasonNames(t *testing.T) {
	for r := FinishStop; r <= FinishOther; r++ {
		if r.String() == "" || (r != FinishOther && finishReason([]byte(r.String()), false) != r) {
			t.Fatalf("reason %d: %q", r, r.String())
		}
	}
}

func TestEndpointOf(t *testing.T) {
	for path, want := range map[string]Endpoint{
		"/v1/chat/completions":          EndpointChat,
		"/llm/v1/chat/completions":      EndpointChat,
		"/v1/completions":               EndpointCompletions,
		"/v1/embeddings":                EndpointEmbeddings,
		"/v1/models":                    EndpointOther,
		"/v2/models/m/infer":            EndpointOther,
		"/v1/chat/completions/":         EndpointOther,
		"/openai/v1/chat/completions":   EndpointChat,
		"/v1/audio/transcriptions":      EndpointOther,
		"/v1/completions-with-a-suffix": EndpointOther,
	} {
		if got := EndpointOf([]byte(path)); got != want {
			t.Errorf("%s: %d, want %d", path, got, want)
		}
	}
}
