package shadow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// MaxStreamChoices bounds the choice index accepted in a streamed chunk,
// so a hostile "index" cannot make the assembler allocate without bound.
const MaxStreamChoices = 128

// streamChoice accumulates one choice of a streamed completion.
type streamChoice struct {
	role, content, text, finish strings.Builder
}

// AssembleSSE assembles an OpenAI-style server-sent event stream
// (chat/completions or completions with "stream": true) into the document
// the same request would have returned without streaming, so the same
// field paths apply to both:
//
//	{"object": "...", "model": "...", "chunks": N, "done": true|false,
//	 "choices": [{"index": i, "message": {"role": r, "content": c},
//	              "text": t, "finish_reason": f}],
//	 "usage": {...last usage seen...}}
//
// message.content concatenates the choice's delta.content pieces (chat) and
// text its text pieces (completions). Lines are split on \n with an
// optional \r; "data:" lines of one event (up to a blank line) are joined
// with \n as the SSE spec says; comments and other fields are ignored;
// "data: [DONE]" ends the stream. A chunk that is not valid JSON is an
// error naming its line. The result uses the types decodeJSON produces.
func AssembleSSE(stream []byte) (map[string]any, error) {
	var (
		choices []*streamChoice
		usage   any
		model   string
		object  string
		chunks  int
		done    bool
		data    []byte
		hasData bool
		line    = 0
		evLine  = 0
	)
	flush := func() error {
		if !hasData {
			return nil
		}
		d := data
		data, hasData = data[:0], false
		if done {
			return nil
		}
		if string(bytes.TrimSpace(d)) == "[DONE]" {
			done = true
			return nil
		}
		var ch struct {
			Object  string          `json:"object"`
			Model   string          `json:"model"`
			Usage   json.RawMessage `json:"usage"`
			Choices []struct {
				Index        int     `json:"index"`
				Text         *string `json:"text"`
				FinishReason *string `json:"finish_reason"`
				Delta        struct {
					Role    *string `json:"role"`
					Content *string `json:"content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal(d, &ch); err != nil {
			return fmt.Errorf("shadow: SSE line %d: chunk %d is not a JSON chunk: %w", evLine, chunks+1, err)
		}
		chunks++
		if ch.Model != "" {
			model = ch.Model
		}
		if ch.Object != "" {
			object = ch.Object
		}
		if len(ch.Usage) > 0 && string(ch.Usage) != "null" {
			u, err := decodeJSON(ch.Usage)
			if err != nil {
				return fmt.Errorf("shadow: SSE line %d: usage: %w", evLine, err)
			}
			usage = u
		}
		for _, c := range ch.Choices {
			if c.Index < 0 || c.Index >= MaxStreamChoices {
				return fmt.Errorf("shadow: SSE line %d: choice index %d outside 0..%d", evLine, c.Index, MaxStreamChoices-1)
			}
			for len(choices) <= c.Index {
				choices = append(choices, &streamChoice{})
			}
			sc := choices[c.Index]
			if c.Delta.Role != nil {
				sc.role.Reset()
				sc.role.WriteString(*c.Delta.Role)
			}
			if c.Delta.Content != nil {
				sc.content.WriteString(*c.Delta.Content)
			}
			if c.Text != nil {
				sc.text.WriteString(*c.Text)
			}
			if c.FinishReason != nil && *c.FinishReason != "" {
				sc.finish.Reset()
				sc.finish.WriteString(*c.FinishReason)
			}
		}
		return nil
	}
	rest := stream
	for len(rest) > 0 {
		line++
		var l []byte
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			l, rest = rest[:i], rest[i+1:]
		} else {
			l, rest = rest, nil
		}
		l = bytes.TrimSuffix(l, []byte("\r"))
		if len(l) == 0 {
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		if l[0] == ':' {
			continue // comment
		}
		field, value := l, []byte(nil)
		if i := bytes.IndexByte(l, ':'); i >= 0 {
			field, value = l[:i], l[i+1:]
			value = bytes.TrimPrefix(value, []byte(" "))
		}
		if string(field) != "data" {
			continue
		}
		if !hasData {
			evLine = line
		} else {
			data = append(data, '\n')
		}
		data = append(data, value...)
		hasData = true
	}
	if err := flush(); err != nil {
		return nil, err
	}
	out := make([]any, 0, len(choices))
	for i, c := range choices {
		// Choices never seen stay in place (empty) so choices[i] keeps
		// meaning index i.
		ch := map[string]any{
			"index":         json.Number(fmt.Sprint(i)),
			"message":       map[string]any{"role": c.role.String(), "content": c.content.String()},
			"text":          c.text.String(),
			"finish_reason": c.finish.String(),
		}
		out = append(out, ch)
	}
	doc := map[string]any{
		"object":  object,
		"model":   model,
		"chunks":  json.Number(fmt.Sprint(chunks)),
		"done":    done,
		"choices": out,
	}
	if usage != nil {
		doc["usage"] = usage
	}
	return doc, nil
}
