package route

import (
	"bytes"
	"encoding/binary"
	"errors"
	"unicode/utf16"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// Errors of the request extractors. They all answer 400.
var (
	// ErrMalformedJSON: the body is not one well-formed JSON object.
	ErrMalformedJSON = errors.New("gateway: request body is not a well-formed JSON object")
	// ErrModelNotString: the body's "model" is not a JSON string.
	ErrModelNotString = errors.New("gateway: request body's \"model\" is not a string")
	// ErrModelNotUTF8: the model name is not valid UTF-8.
	ErrModelNotUTF8 = errors.New("gateway: model name is not valid UTF-8")
	// ErrMalformedGRPC: the gRPC message framing or protobuf is broken.
	ErrMalformedGRPC = errors.New("gateway: malformed gRPC request message")
)

// JSONFields is what routing reads from an OpenAI-style body.
type JSONFields struct {
	Model    []byte // the "model" string, unescaped; aliases body or scratch
	HasModel bool
	Stream   bool // "stream": true
}

// maxJSONDepth bounds nesting, like encoding/json's own limit.
const maxJSONDepth = 10000

// ScanJSON reads the top-level "model" and "stream" members of body
// without decoding it. body must be exactly one JSON object (whitespace
// around it allowed); the whole body is checked for well-formedness with
// encoding/json's rules, keys are matched exactly (as Python servers do),
// and a repeated key keeps its last value. Escaped model names are
// unescaped into scratch, whose grown buffer is returned for reuse. It
// does not allocate unless scratch must grow.
func ScanJSON(body, scratch []byte) (JSONFields, []byte, error) {
	var f JSONFields
	s := jscan{b: body}
	s.ws()
	if !s.eat('{') {
		return f, scratch, ErrMalformedJSON
	}
	s.ws()
	if s.eat('}') {
		return f, scratch, s.end()
	}
	for {
		s.ws()
		ks, ke, kesc, ok := s.str()
		if !ok {
			return f, scratch, ErrMalformedJSON
		}
		s.ws()
		if !s.eat(':') {
			return f, scratch, ErrMalformedJSON
		}
		s.ws()
		key := body[ks:ke]
		if kesc {
			// Rare: compare the unescaped key without allocating.
			var kb [16]byte
			if ke-ks <= 64 {
				key = appendUnescaped(kb[:0], key)
			}
		}
		switch {
		case string(key) == "model":
			if s.peek() == '"' {
				vs, ve, vesc, ok := s.str()
				if !ok {
					return f, scratch, ErrMalformedJSON
				}
				f.HasModel = true
				f.Model = body[vs:ve]
				if vesc {
					scratch = appendUnescaped(scratch[:0], f.Model)
					f.Model = scratch
				}
			} else {
				if !s.value(0) {
					return f, scratch, ErrMalformedJSON
				}
				f.HasModel, f.Model = false, nil
				// Keep scanning: the document must still be well-formed,
				// but a later string "model" would win.
				f.Model = errNotStringMarker
			}
		case string(key) == "stream":
			start := s.i
			if !s.value(0) {
				return f, scratch, ErrMalformedJSON
			}
			f.Stream = string(body[start:s.i]) == "true"
		default:
			if !s.value(0) {
				return f, scratch, ErrMalformedJSON
			}
		}
		s.ws()
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			break
		}
		return f, scratch, ErrMalformedJSON
	}
	if err := s.end(); err != nil {
		return f, scratch, err
	}
	if !f.HasModel && f.Model != nil {
		return f, scratch, ErrModelNotString
	}
	if f.HasModel && !utf8.Valid(f.Model) {
		return f, scratch, ErrModelNotUTF8
	}
	return f, scratch, nil
}

// errNotStringMarker marks, in JSONFields.model, a "model" that was not a
// string (hasModel false, model non-nil).
var errNotStringMarker = []byte{}

type jscan struct {
	b []byte
	i int
}

func (s *jscan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *jscan) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jscan) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

func (s *jscan) end() error {
	s.ws()
	if s.i != len(s.b) {
		return ErrMalformedJSON
	}
	return nil
}

// str scans a string at s.i and returns its content span and whether it
// has escapes.
func (s *jscan) str() (start, end int, esc, ok bool) {
	if !s.eat('"') {
		return 0, 0, false, false
	}
	start = s.i
	b := s.b
	for s.i < len(b) {
		// Skip plain bytes eight at a time while no byte of the word
		// needs a look (a quote, a backslash, a control character), then
		// in a tight table-driven loop. Message content is most of a chat
		// body: this is where a large request's routing time goes.
		for s.i+8 <= len(b) && plain8(binary.LittleEndian.Uint64(b[s.i:])) {
			s.i += 8
		}
		for s.i < len(b) && strPlain[b[s.i]] {
			s.i++
		}
		if s.i >= len(b) {
			break
		}
		c := b[s.i]
		switch {
		case c == '"':
			end = s.i
			s.i++
			return start, end, esc, true
		case c == '\\':
			esc = true
			if s.i+1 >= len(b) {
				return 0, 0, false, false
			}
			switch b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(b) {
					return 0, 0, false, false
				}
				for _, h := range b[s.i+2 : s.i+6] {
					if unhex(h) < 0 {
						return 0, 0, false, false
					}
				}
				s.i += 6
			default:
				return 0, 0, false, false
			}
		case c < 0x20:
			return 0, 0, false, false
		default:
			s.i++
		}
	}
	return 0, 0, false, false
}

// plain8 reports whether none of the eight bytes in w is '"', '\\' or a
// control character (< 0x20), with the usual SWAR tests: a byte is zero
// in x exactly when (x-0x01…)&^x&0x80… has its high bit; a byte is below
// n (n <= 0x80) in w when (w-n…)&^w&0x80… does.
func plain8(w uint64) bool {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	q := w ^ (ones * '"')
	bs := w ^ (ones * '\\')
	t := (q - ones) &^ q
	t |= (bs - ones) &^ bs
	t |= (w - ones*0x20) &^ w
	return t&highs == 0
}

// strPlain marks the bytes a JSON string may hold without a second look:
// everything but '"', '\\' and control characters.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// value skips one JSON value.
func (s *jscan) value(depth int) bool {
	if depth > maxJSONDepth {
		return false
	}
	switch c := s.peek(); {
	case c == '"':
		_, _, _, ok := s.str()
		return ok
	case c == '{':
		s.i++
		s.ws()
		if s.eat('}') {
			return true
		}
		for {
			s.ws()
			if _, _, _, ok := s.str(); !ok {
				return false
			}
			s.ws()
			if !s.eat(':') {
				return false
			}
			s.ws()
			if !s.value(depth + 1) {
				return false
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			return s.eat('}')
		}
	case c == '[':
		s.i++
		s.ws()
		if s.eat(']') {
			return true
		}
		for {
			s.ws()
			if !s.value(depth + 1) {
				return false
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			return s.eat(']')
		}
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.num()
	}
	return false
}

func (s *jscan) lit(w string) bool {
	if len(s.b)-s.i >= len(w) && string(s.b[s.i:s.i+len(w)]) == w {
		s.i += len(w)
		return true
	}
	return false
}

func (s *jscan) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

func (s *jscan) num() bool {
	s.eat('-')
	switch {
	case s.eat('0'):
	case s.peek() >= '1' && s.peek() <= '9':
		s.digits()
	default:
		return false
	}
	if s.eat('.') && s.digits() == 0 {
		return false
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

func unhex(c byte) rune {
	switch {
	case c >= '0' && c <= '9':
		return rune(c - '0')
	case c >= 'a' && c <= 'f':
		return rune(c - 'a' + 10)
	case c >= 'A' && c <= 'F':
		return rune(c - 'A' + 10)
	}
	return -1
}

func hex4(b []byte) rune {
	return unhex(b[0])<<12 | unhex(b[1])<<8 | unhex(b[2])<<4 | unhex(b[3])
}

// appendUnescaped appends the unescaped form of a string's content (already
// checked by jscan.str) to dst, with encoding/json's handling of lone
// surrogates (U+FFFD).
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c != '\\' {
			j := bytes.IndexByte(s[i:], '\\')
			if j < 0 {
				return append(dst, s[i:]...)
			}
			dst = append(dst, s[i:i+j]...)
			i += j
			continue
		}
		switch s[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					r2 = utf16.DecodeRune(r, hex4(s[i+2:i+6]))
				}
				if r2 != utf8.RuneError {
					i += 6
					r = r2
				} else {
					r = utf8.RuneError
				}
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, s[i+1])
		}
		i += 2
	}
	return dst
}

// kservePrefix is the KServe v2 / Open Inference Protocol model path.
const kservePrefix = "/v2/models/"

// KServeModel returns the model of a KServe v2 path /v2/models/{name}[/...].
func KServeModel(path []byte) ([]byte, bool) {
	if len(path) <= len(kservePrefix) || string(path[:len(kservePrefix)]) != kservePrefix {
		return nil, false
	}
	rest := path[len(kservePrefix):]
	if i := bytes.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	return rest, len(rest) > 0
}

// GRPCModel reads field 1 (ModelInferRequest.model_name, and the name of
// ModelReady/ModelMetadata requests) of the first gRPC message in buf,
// which starts with the 5-byte gRPC frame header. need > 0 asks for that
// many bytes in total before the answer can be given. A compressed message
// reports found false.
func GRPCModel(buf []byte) (model []byte, found bool, need int, err error) {
	if len(buf) < 5 {
		return nil, false, 5, nil
	}
	n := binary.BigEndian.Uint32(buf[1:5])
	if buf[0] > 1 {
		return nil, false, 0, ErrMalformedGRPC
	}
	if uint64(n) > 1<<30 {
		return nil, false, 0, ErrMalformedGRPC
	}
	if len(buf) < 5+int(n) {
		return nil, false, 5 + int(n), nil
	}
	if buf[0] == 1 {
		return nil, false, 0, nil
	}
	msg := buf[5 : 5+int(n)]
	for len(msg) > 0 {
		num, typ, k := protowire.ConsumeTag(msg)
		if k < 0 {
			return nil, false, 0, ErrMalformedGRPC
		}
		msg = msg[k:]
		if num == 1 && typ == protowire.BytesType {
			v, k := protowire.ConsumeBytes(msg)
			if k < 0 {
				return nil, false, 0, ErrMalformedGRPC
			}
			model, found = v, true
			msg = msg[k:]
			continue
		}
		k = protowire.ConsumeFieldValue(num, typ, msg)
		if k < 0 {
			return nil, false, 0, ErrMalformedGRPC
		}
		msg = msg[k:]
	}
	if found && !utf8.Valid(model) {
		return nil, false, 0, ErrModelNotUTF8
	}
	return model, found, 0, nil
}

// HasRayPrefix reports whether path is under a Ray Serve route prefix:
// equal to it or continuing with "/".
func HasRayPrefix(path []byte, prefix string) bool {
	if prefix == "/" {
		return true
	}
	if len(path) < len(prefix) || string(path[:len(prefix)]) != prefix {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/' || prefix[len(prefix)-1] == '/'
}

// IsJSONRequest: a JSON content type; or none, or the form type that
// `curl -d` sends by default, and a body starting with '{'.
func IsJSONRequest(ct, body []byte) bool {
	if bytes.Contains(ct, []byte("json")) {
		return true
	}
	if len(ct) > 0 && !bytes.HasPrefix(ct, []byte("application/x-www-form-urlencoded")) {
		return false
	}
	b := bytes.TrimLeft(body, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}
