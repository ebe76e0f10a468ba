package shadow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// MaxPathSegments bounds a field path.
const MaxPathSegments = 64

// maxIndex bounds an array index in a field path.
const maxIndex = 1 << 20

// segment is one step of a field path: an object key, or an array index
// when key is "" and index >= 0.
type segment struct {
	key   string
	index int
}

// FieldPath is a parsed JSON field path such as choices[0].message.content
// or outputs[0].data: object keys separated by dots, array indices in
// brackets. A key may not contain '.', '[' or ']'.
type FieldPath struct {
	raw  string
	segs []segment
}

// String returns the path as written.
func (p FieldPath) String() string { return p.raw }

// ParsePath parses a field path. Errors name the byte position.
func ParsePath(s string) (FieldPath, error) {
	p := FieldPath{raw: s}
	if s == "" {
		return p, fmt.Errorf("shadow: field path: empty")
	}
	i := 0
	expectKey := true // at the start or after '.'
	for i < len(s) {
		if len(p.segs) >= MaxPathSegments {
			return p, fmt.Errorf("shadow: field path %q: more than %d segments", s, MaxPathSegments)
		}
		switch c := s[i]; {
		case c == '[':
			j := i + 1
			for j < len(s) && s[j] != ']' {
				j++
			}
			if j == len(s) {
				return p, fmt.Errorf("shadow: field path %q: position %d: '[' without ']'", s, i)
			}
			num := s[i+1 : j]
			n, err := strconv.Atoi(num)
			if err != nil || n < 0 || n > maxIndex || num[0] == '+' || num[0] == '-' {
				return p, fmt.Errorf("shadow: field path %q: position %d: index %q is not a number in 0..%d", s, i+1, num, maxIndex)
			}
			if expectKey && i > 0 {
				return p, fmt.Errorf("shadow: field path %q: position %d: '.' must be followed by a key", s, i)
			}
			p.segs = append(p.segs, segment{index: n})
			i = j + 1
			expectKey = false
		case c == '.':
			if expectKey {
				return p, fmt.Errorf("shadow: field path %q: position %d: empty key", s, i)
			}
			i++
			expectKey = true
			if i == len(s) {
				return p, fmt.Errorf("shadow: field path %q: position %d: trailing '.'", s, i-1)
			}
		case c == ']':
			return p, fmt.Errorf("shadow: field path %q: position %d: ']' without '['", s, i)
		default:
			if !expectKey {
				return p, fmt.Errorf("shadow: field path %q: position %d: want '.' or '[' after ']'", s, i)
			}
			j := i
			for j < len(s) && s[j] != '.' && s[j] != '[' && s[j] != ']' {
				j++
			}
			p.segs = append(p.segs, segment{key: s[i:j], index: -1})
			i = j
			expectKey = false
		}
	}
	return p, nil
}

// Lookup walks the decoded JSON document doc (as produced by decodeJSON:
// objects map[string]any, arrays []any, numbers json.Number) and returns
// the value at the path.
func (p FieldPath) Lookup(doc any) (any, bool) {
	cur := doc
	for _, sg := range p.segs {
		if sg.index >= 0 {
			arr, ok := cur.([]any)
			if !ok || sg.index >= len(arr) {
				return nil, false
			}
			cur = arr[sg.index]
			continue
		}
		obj, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = obj[sg.key]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// Extract decodes body as JSON and returns the value at the path.
func (p FieldPath) Extract(body []byte) (any, bool, error) {
	doc, err := decodeJSON(body)
	if err != nil {
		return nil, false, err
	}
	v, ok := p.Lookup(doc)
	return v, ok, nil
}

// decodeJSON decodes one JSON document, keeping numbers as json.Number so
// integers above 2^53 compare exactly.
func decodeJSON(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("shadow: decode JSON body: %w", err)
	}
	// More() is false before a stray '}' or ']', so ask for the next token:
	// only a clean end of input is accepted.
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("shadow: decode JSON body: trailing data after the document")
	}
	return v, nil
}
