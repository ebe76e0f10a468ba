package openai

import "errors"

// ErrNotJSON: the body is not exactly one well-formed JSON object (with
// encoding/json's rules; whitespace around it is allowed).
var ErrNotJSON = errors.New("openai: body is not one well-formed JSON object")

// Usage is an answer's top-level "usage" object: what the engine says the
// request cost. A count that is absent, null or not a non-negative JSON
// integer reads as 0.
type Usage struct {
	PromptTokens     int64 // usage.prompt_tokens
	CompletionTokens int64 // usage.completion_tokens (absent for embeddings)
	TotalTokens      int64 // usage.total_tokens
	CachedTokens     int64 // usage.prompt_tokens_details.cached_tokens (vLLM with --enable-prompt-tokens-details)
	ReasoningTokens  int64 // usage.completion_tokens_details.reasoning_tokens
	// Found: the answer had a "usage" object (not null, not another
	// type). Without it the counts are all 0 and mean "unknown".
	Found bool
}

// FinishReason is one choice's finish_reason.
type FinishReason uint8

// The finish reasons of OpenAI's API and of vLLM ("abort", "error");
// FinishOther is any other string.
const (
	FinishStop FinishReason = iota + 1
	FinishLength
	FinishToolCalls
	FinishContentFilter
	FinishFunctionCall
	FinishAbort
	FinishError
	FinishOther
)

var finishNames = [...]string{"", "stop", "length", "tool_calls", "content_filter", "function_call", "abort", "error", "other"}

// String is the reason as the API spells it ("other" for an unknown one).
func (r FinishReason) String() string {
	if int(r) < len(finishNames) {
		return finishNames[r]
	}
	return ""
}

func finishReason(raw []byte, esc bool) FinishReason {
	for r := FinishStop; r < FinishOther; r++ {
		if textIs(raw, esc, finishNames[r]) {
			return r
		}
	}
	return FinishOther
}

// MaxFinishReasons is how many finish reasons are kept (one per choice;
// more choices than this keep the first ones).
const MaxFinishReasons = 8

// FinishReasons are the finish reasons seen, in the order the choices
// carried them: array order in a buffered answer, arrival order in a
// stream. A choice whose finish_reason is null or not a string has none.
// The zero value is empty.
type FinishReasons struct {
	r [MaxFinishReasons]FinishReason
	n uint8
}

// Len is the number of reasons kept.
func (f FinishReasons) Len() int { return int(f.n) }

// At is the i-th reason.
func (f FinishReasons) At(i int) FinishReason { return f.r[i] }

func (f *FinishReasons) add(r FinishReason) {
	if f.n < MaxFinishReasons {
		f.r[f.n] = r
		f.n++
	}
}

// Response is what a buffered chat/completions, completions or embeddings
// answer tells the gateway.
type Response struct {
	Usage  Usage
	Finish FinishReasons
}

// ParseResponse reads the top-level "usage" object and the finish reasons
// of choices[] from a buffered answer, without decoding it. body must be
// exactly one JSON object; it is checked whole (a "usage" inside a string,
// or nested deeper than the top level, does not count). A repeated key
// keeps its last value, as encoding/json and Python's json do. It does
// not allocate.
func ParseResponse(body []byte) (Response, error) {
	var r Response
	s := scan{b: body}
	s.ws()
	if !s.eat('{') {
		return Response{}, ErrNotJSON
	}
	for n := 0; ; n++ {
		key, esc, more, ok := s.member(n)
		if !ok {
			return Response{}, ErrNotJSON
		}
		if !more {
			break
		}
		switch {
		case textIs(key, esc, "usage"):
			if r.Usage, ok = s.usage(1); !ok {
				return Response{}, ErrNotJSON
			}
		case textIs(key, esc, "choices"):
			var c choices
			if c, ok = s.choices(1); !ok {
				return Response{}, ErrNotJSON
			}
			r.Finish = c.finish
		default:
			if !s.value(1) {
				return Response{}, ErrNotJSON
			}
		}
	}
	if !s.end() {
		return Response{}, ErrNotJSON
	}
	return r, nil
}

// usage reads a "usage" value: an object, or anything else (not found).
func (s *scan) usage(depth int) (Usage, bool) {
	var u Usage
	if s.peek() != '{' {
		return u, s.value(depth)
	}
	s.i++
	u.Found = true
	for n := 0; ; n++ {
		key, esc, more, ok := s.member(n)
		if !ok {
			return u, false
		}
		if !more {
			return u, true
		}
		switch {
		case textIs(key, esc, "prompt_tokens"):
			u.PromptTokens, ok = s.count(depth + 1)
		case textIs(key, esc, "completion_tokens"):
			u.CompletionTokens, ok = s.count(depth + 1)
		case textIs(key, esc, "total_tokens"):
			u.TotalTokens, ok = s.count(depth + 1)
		case textIs(key, esc, "prompt_tokens_details"):
			u.CachedTokens, ok = s.detail(depth+1, "cached_tokens")
		case textIs(key, esc, "completion_tokens_details"):
			u.ReasoningTokens, ok = s.detail(depth+1, "reasoning_tokens")
		default:
			ok = s.value(depth + 1)
		}
		if !ok {
			return u, false
		}
	}
}

// count reads a value that should be a token count (0 if it is not).
func (s *scan) count(depth int) (int64, bool) {
	start := s.i
	if c := s.peek(); c != '-' && (c < '0' || c > '9') {
		return 0, s.value(depth)
	}
	if !s.num() {
		return 0, false
	}
	n, _ := count(s.b[start:s.i])
	return n, true
}

// detail reads a *_tokens_details value and the count named name in it.
func (s *scan) detail(depth int, name string) (int64, bool) {
	if s.peek() != '{' {
		return 0, s.value(depth)
	}
	s.i++
	var v int64
	for n := 0; ; n++ {
		key, esc, more, ok := s.member(n)
		if !ok {
			return 0, false
		}
		if !more {
			return v, true
		}
		if textIs(key, esc, name) {
			v, ok = s.count(depth + 1)
		} else {
			ok = s.value(depth + 1)
		}
		if !ok {
			return 0, false
		}
	}
}

// choices is what a "choices" value holds for the gateway.
type choices struct {
	n       int  // elements; -1 when the value is not an array
	content bool // some choice carries generated output
	finish  FinishReasons
}

// choices reads a "choices" value.
func (s *scan) choices(depth int) (choices, bool) {
	c := choices{n: -1}
	if s.peek() != '[' {
		return c, s.value(depth)
	}
	s.i++
	c.n = 0
	for ; ; c.n++ {
		more, ok := s.elem(c.n)
		if !ok {
			return c, false
		}
		if !more {
			return c, true
		}
		fin, content, ok := s.choice(depth + 1)
		if !ok {
			return c, false
		}
		if fin != 0 {
			c.finish.add(fin)
		}
		c.content = c.content || content
	}
}

// choice reads one element of choices: its finish_reason, and whether it
// carries output: delta.content, delta.reasoning_content or
// delta.reasoning (vLLM's reasoning models) as a non-empty string,
// delta.tool_calls as a non-empty array, or text (completions) as a
// non-empty string. A role-only first chunk ("delta":{"role":"assistant",
// "content":""}) carries none.
func (s *scan) choice(depth int) (fin FinishReason, content bool, ok bool) {
	if s.peek() != '{' {
		return 0, false, s.value(depth)
	}
	s.i++
	var delta, text bool
	for n := 0; ; n++ {
		key, esc, more, ok := s.member(n)
		if !ok {
			return 0, false, false
		}
		if !more {
			return fin, delta || text, true
		}
		switch {
		case textIs(key, esc, "finish_reason"):
			fin = 0
			if s.peek() == '"' {
				vs, ve, vesc, ok := s.str()
				if !ok {
					return 0, false, false
				}
				fin = finishReason(s.b[vs:ve], vesc)
			} else if !s.value(depth + 1) {
				return 0, false, false
			}
		case textIs(key, esc, "delta"):
			if delta, ok = s.delta(depth + 1); !ok {
				return 0, false, false
			}
		case textIs(key, esc, "text"):
			if text, ok = s.nonEmptyString(depth + 1); !ok {
				return 0, false, false
			}
		default:
			if !s.value(depth + 1) {
				return 0, false, false
			}
		}
	}
}

// delta reads a choice's "delta" and reports whether it carries output.
func (s *scan) delta(depth int) (bool, bool) {
	if s.peek() != '{' {
		return false, s.value(depth)
	}
	s.i++
	var content, reasoningContent, reasoning, tools bool
	for n := 0; ; n++ {
		key, esc, more, ok := s.member(n)
		if !ok {
			return false, false
		}
		if !more {
			return content || reasoningContent || reasoning || tools, true
		}
		switch {
		case textIs(key, esc, "content"):
			content, ok = s.nonEmptyString(depth + 1)
		case textIs(key, esc, "reasoning_content"):
			reasoningContent, ok = s.nonEmptyString(depth + 1)
		case textIs(key, esc, "reasoning"):
			reasoning, ok = s.nonEmptyString(depth + 1)
		case textIs(key, esc, "tool_calls"):
			tools, ok = s.nonEmptyArray(depth + 1)
		default:
			ok = s.value(depth + 1)
		}
		if !ok {
			return false, false
		}
	}
}

// nonEmptyString reads a value and reports whether it is a string that
// is not "" (every escape decodes to at least one character).
func (s *scan) nonEmptyString(depth int) (bool, bool) {
	if s.peek() != '"' {
		return false, s.value(depth)
	}
	vs, ve, _, ok := s.str()
	return ok && ve > vs, ok
}

// nonEmptyArray reads a value and reports whether it is an array with at
// least one element.
func (s *scan) nonEmptyArray(depth int) (bool, bool) {
	if s.peek() != '[' {
		return false, s.value(depth)
	}
	start := s.i
	if !s.value(depth) {
		return false, false
	}
	inner := scan{b: s.b[start+1 : s.i-1]}
	return !inner.end(), true
}

// chunk is what one streamed event's JSON tells the gateway.
type chunk struct {
	choices choices
	usage   Usage
	err     bool // a top-level "error" that is not null (vLLM's mid-stream error event)
}

// parseChunk reads one event's data as a chat/completions or completions
// chunk; ok is false when data is not one JSON object.
func parseChunk(data []byte) (c chunk, ok bool) {
	c.choices.n = -1
	s := scan{b: data}
	s.ws()
	if !s.eat('{') {
		return chunk{}, false
	}
	for n := 0; ; n++ {
		key, esc, more, ok := s.member(n)
		if !ok {
			return chunk{}, false
		}
		if !more {
			break
		}
		switch {
		case textIs(key, esc, "choices"):
			c.choices, ok = s.choices(1)
		case textIs(key, esc, "usage"):
			c.usage, ok = s.usage(1)
		case textIs(key, esc, "error"):
			c.err = s.peek() != 'n'
			ok = s.value(1)
		default:
			ok = s.value(1)
		}
		if !ok {
			return chunk{}, false
		}
	}
	if !s.end() {
		return chunk{}, false
	}
	return c, true
}
