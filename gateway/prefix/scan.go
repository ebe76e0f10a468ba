package prefix

import (
	"bytes"
	"encoding/binary"
	"errors"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"
)

// ErrMalformed is returned for a body that is not one well-formed JSON
// object (encoding/json's rules). The gateway answers it with 400.
var ErrMalformed = errors.New("prefix: request body is not a well-formed JSON object")

// Kind says which prompt field a body carried.
type Kind uint8

const (
	// None: no "messages", "prompt" or "inputs" member.
	None Kind = iota
	// Chat: an OpenAI chat completion body ("messages").
	Chat
	// Completion: an OpenAI completion body ("prompt").
	Completion
	// KServe: a KServe v2 inference body ("inputs").
	KServe
)

func (k Kind) String() string {
	switch k {
	case Chat:
		return "chat"
	case Completion:
		return "completion"
	case KServe:
		return "kserve"
	}
	return "none"
}

// Result is what Scan found.
type Result struct {
	// Kind is the prompt field read.
	Kind Kind
	// Points is how many points Scan wrote to the caller's slices.
	Points int
	// Chars is the length in bytes of the hashed stream: the prompt's
	// size in the unit of the points' ends.
	Chars int
	// User is a hash of the OpenAI "user" member when it is a string (a
	// session key), 0 otherwise.
	User uint64
}

// Seed returns the hash a route should start a model's chains from, so
// that equal prompts to different models (base model and LoRA adapters
// have different KV caches) never share points.
func Seed(model []byte) uint64 { return xxhash.Sum64(model) }

// maxDepth bounds nesting, like encoding/json's scanner.
const maxDepth = 10000

// Scan reads the prompt of body (see the package doc) and writes its
// points, shallowest first, to hashes and ends: hashes[i] names the
// stream's first ends[i] bytes. It writes at most min(len(hashes),
// len(ends)) points, thinning them when there are more. seed starts the
// chain (see Seed). It allocates nothing and returns ErrMalformed unless
// body is one well-formed JSON object; a body without a prompt field is
// not an error (Kind None, no points).
func Scan(body []byte, seed uint64, hashes []uint64, ends []uint32) (Result, error) {
	return scanPrompt(body, seed, hashes, ends, false)
}

// ScanChecked is Scan for a body the caller has already checked to be one
// well-formed JSON object with encoding/json's rules (route.ScanJSON
// does): its strings are skipped, not checked again, which is most of the
// work on a long prompt. On a body that is not well-formed it still stays
// in bounds and never panics, but what it returns is unspecified.
func ScanChecked(body []byte, seed uint64, hashes []uint64, ends []uint32) (Result, error) {
	return scanPrompt(body, seed, hashes, ends, true)
}

func scanPrompt(body []byte, seed uint64, hashes []uint64, ends []uint32, checked bool) (Result, error) {
	var res Result
	top, err := members(body, checked)
	if err != nil {
		return res, err
	}
	st := stream{hashes: hashes, ends: ends}
	if len(ends) < len(hashes) {
		st.hashes = hashes[:len(ends)]
	}
	putSeed(&st.buf, seed)
	switch {
	case top.messages.ok:
		res.Kind = Chat
		st.chat(body[top.messages.lo:top.messages.hi])
	case top.prompt.ok:
		res.Kind = Completion
		st.completion(body[top.prompt.lo:top.prompt.hi])
	case top.inputs.ok:
		res.Kind = KServe
		st.kserve(body[top.inputs.lo:top.inputs.hi])
	}
	if u := top.user; u.ok && body[u.lo] == '"' {
		res.User = hashString(body[u.lo:u.hi])
	}
	res.Points, res.Chars = st.np, st.total
	return res, nil
}

// span is a value's bytes in the body; ok says the member was present.
type span struct {
	lo, hi int
	ok     bool
}

// topMembers are the top-level members Scan reads, each its last
// occurrence.
type topMembers struct {
	messages, prompt, inputs, user span
}

// members checks that body is one well-formed JSON object (its strings
// too unless checked) and returns the spans of the members Scan reads.
func members(body []byte, checked bool) (topMembers, error) {
	var m topMembers
	s := scanner{b: body, checked: checked}
	s.ws()
	if s.peek() != '{' {
		return m, ErrMalformed
	}
	ok := s.object(0, func(key []byte, esc bool, lo, hi int) {
		switch {
		case keyIs(key, esc, "messages"):
			m.messages = span{lo, hi, true}
		case keyIs(key, esc, "prompt"):
			m.prompt = span{lo, hi, true}
		case keyIs(key, esc, "inputs"):
			m.inputs = span{lo, hi, true}
		case keyIs(key, esc, "user"):
			m.user = span{lo, hi, true}
		}
	})
	s.ws()
	if !ok || s.i != len(body) {
		return m, ErrMalformed
	}
	return m, nil
}

// scanner walks JSON with encoding/json's rules. It never allocates.
type scanner struct {
	b []byte
	i int
	// checked: b is known well-formed (a part of a body members
	// checked), so strings are skipped without a second check of their
	// bytes. On a malformed b the scan still stays in bounds.
	checked bool
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str scans a string at s.i and returns its content span (between the
// quotes) and whether it holds escapes.
func (s *scanner) str() (lo, hi int, esc, ok bool) {
	if !s.eat('"') {
		return 0, 0, false, false
	}
	lo = s.i
	if s.checked {
		return s.skipStr(lo)
	}
	b := s.b
	for s.i < len(b) {
		s.i += plainRun(b[s.i:])
		for s.i < len(b) && strPlain[b[s.i]] {
			s.i++
		}
		if s.i >= len(b) {
			break
		}
		switch c := b[s.i]; {
		case c == '"':
			hi = s.i
			s.i++
			return lo, hi, esc, true
		case c == '\\':
			esc = true
			if s.i+1 >= len(b) {
				return 0, 0, false, false
			}
			switch b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(b) || hex4(b[s.i+2:s.i+6]) < 0 {
					return 0, 0, false, false
				}
				s.i += 6
			default:
				return 0, 0, false, false
			}
		default: // a control character
			return 0, 0, false, false
		}
	}
	return 0, 0, false, false
}

// skipStr finds the end of a checked string whose content starts at lo:
// the first quote not escaped, found with bytes.IndexByte (vectorised),
// which is most of a chat body's scanning once members has checked it.
func (s *scanner) skipStr(lo int) (_, hi int, esc, ok bool) {
	b := s.b
	for from := lo; ; {
		q := bytes.IndexByte(b[from:], '"')
		if q < 0 {
			return 0, 0, false, false
		}
		q += from
		k := q
		for k > lo && b[k-1] == '\\' {
			k--
		}
		if (q-k)%2 == 0 { // an even run of backslashes escapes itself
			s.i = q + 1
			return lo, q, bytes.IndexByte(b[lo:q], '\\') >= 0, true
		}
		from = q + 1
	}
}

// Word-at-a-time tests (SWAR): a byte of w is zero where the matching
// byte of x is, and so on; each sets the top bit of the bytes that match
// (and possibly of bytes above one that matches, which only makes the
// runs below stop early).
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

func zeroByte(x uint64) uint64 { return (x - ones) & ^x & highs }

// plainRun returns how many leading bytes of b are plain string bytes
// (not '"', '\\' or a control character), counted 8 at a time: it may
// stop short of the true run, never beyond it.
func plainRun(b []byte) int {
	n := 0
	for len(b)-n >= 8 {
		w := binary.LittleEndian.Uint64(b[n:])
		if zeroByte(w^(ones*'"'))|zeroByte(w^(ones*'\\'))|((w-ones*0x20) & ^w & highs) != 0 {
			break
		}
		n += 8
	}
	return n
}

// asciiRun returns how many leading bytes of b are ASCII other than
// '\\', counted 8 at a time (it may stop short of the true run).
func asciiRun(b []byte) int {
	n := 0
	for len(b)-n >= 8 {
		w := binary.LittleEndian.Uint64(b[n:])
		if zeroByte(w^(ones*'\\'))|(w&highs) != 0 {
			break
		}
		n += 8
	}
	return n
}

// strPlain marks the bytes a JSON string may hold as they are.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// object scans an object at s.i, calling member for each member with the
// key's content and the value's span.
func (s *scanner) object(depth int, member func(key []byte, esc bool, lo, hi int)) bool {
	if depth >= maxDepth || !s.eat('{') {
		return false
	}
	s.ws()
	if s.eat('}') {
		return true
	}
	for {
		s.ws()
		klo, khi, kesc, ok := s.str()
		if !ok {
			return false
		}
		s.ws()
		if !s.eat(':') {
			return false
		}
		s.ws()
		lo := s.i
		if !s.value(depth + 1) {
			return false
		}
		if member != nil {
			member(s.b[klo:khi], kesc, lo, s.i)
		}
		s.ws()
		if s.eat(',') {
			continue
		}
		return s.eat('}')
	}
}

// array scans an array at s.i, calling elem with each element's span.
func (s *scanner) array(depth int, elem func(lo, hi int)) bool {
	if depth >= maxDepth || !s.eat('[') {
		return false
	}
	s.ws()
	if s.eat(']') {
		return true
	}
	for {
		s.ws()
		lo := s.i
		if !s.value(depth + 1) {
			return false
		}
		if elem != nil {
			elem(lo, s.i)
		}
		s.ws()
		if s.eat(',') {
			continue
		}
		return s.eat(']')
	}
}

// value skips one value at s.i; depth is the nesting of its container.
func (s *scanner) value(depth int) bool {
	switch c := s.peek(); {
	case c == '"':
		_, _, _, ok := s.str()
		return ok
	case c == '{':
		return s.object(depth, nil)
	case c == '[':
		return s.array(depth, nil)
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

func (s *scanner) lit(w string) bool {
	if len(s.b)-s.i >= len(w) && string(s.b[s.i:s.i+len(w)]) == w {
		s.i += len(w)
		return true
	}
	return false
}

func (s *scanner) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

func (s *scanner) num() bool {
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

// hex4 decodes four hex digits, or returns a negative number.
func hex4(b []byte) rune {
	return unhex(b[0])<<12 | unhex(b[1])<<8 | unhex(b[2])<<4 | unhex(b[3])
}

// sink receives unescaped text: a concrete type rather than a func value,
// so that the pieces (some on unescape's stack) do not escape.
type sink struct {
	st   *stream        // sinkStream
	rest string         // sinkMatch: what is still to match
	d    *xxhash.Digest // sinkHash
	mode uint8
}

const (
	sinkStream = iota
	sinkMatch
	sinkHash
)

func (k *sink) emit(p []byte) bool {
	switch k.mode {
	case sinkStream:
		return k.st.write(p)
	case sinkMatch:
		if len(p) > len(k.rest) || string(p) != k.rest[:len(p)] {
			k.rest = "\x00" // cannot match any more
			return false
		}
		k.rest = k.rest[len(p):]
		return true
	}
	_, _ = k.d.Write(p)
	return true
}

// unescape passes the unescaped form of a checked string's content (no
// quotes) to k in pieces, with encoding/json's rules: invalid UTF-8 bytes
// and lone surrogates become U+FFFD. It stops early, returning false, when
// k does.
func unescape(s []byte, k *sink) bool {
	var rb [utf8.UTFMax]byte
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			// A run up to the next escape goes out whole when it is
			// valid UTF-8, as nearly every run is.
			j := bytes.IndexByte(s[i:], '\\')
			if j < 0 {
				j = len(s)
			} else {
				j += i
			}
			if utf8.Valid(s[i:j]) {
				if !k.emit(s[i:j]) {
					return false
				}
			} else if !emitInvalid(s[i:j], k) {
				return false
			}
			i = j
			continue
		}
		// An escape (checked by scanner.str, unless the body came
		// checked: then a cut one ends the text).
		if i+1 >= len(s) || s[i+1] == 'u' && i+6 > len(s) {
			return k.emit(replacement)
		}
		var out []byte
		switch s[i+1] {
		case 'b':
			out = rb[:1]
			rb[0] = '\b'
		case 'f':
			out = rb[:1]
			rb[0] = '\f'
		case 'n':
			out = rb[:1]
			rb[0] = '\n'
		case 'r':
			out = rb[:1]
			rb[0] = '\r'
		case 't':
			out = rb[:1]
			rb[0] = '\t'
		case 'u':
			r := hex4(s[i+2 : i+6])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if lo := hex4(s[i+2 : i+6]); lo >= 0 {
						r2 = utf16.DecodeRune(r, lo)
					}
				}
				if r2 != utf8.RuneError {
					i += 6
					r = r2
				} else {
					r = utf8.RuneError
				}
			}
			n := utf8.EncodeRune(rb[:], r)
			if !k.emit(rb[:n]) {
				return false
			}
			continue
		default: // '"', '\\', '/'
			out = rb[:1]
			rb[0] = s[i+1]
		}
		i += 2
		if !k.emit(out) {
			return false
		}
	}
	return true
}

// emitInvalid passes a run without escapes that is not valid UTF-8 to k,
// each invalid byte as U+FFFD.
func emitInvalid(s []byte, k *sink) bool {
	for i := 0; i < len(s); {
		j := i + asciiRun(s[i:])
		for j < len(s) && s[j] < utf8.RuneSelf {
			j++
		}
		if j > i {
			if !k.emit(s[i:j]) {
				return false
			}
			i = j
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		i += size
		p := s[i-size : i]
		if r == utf8.RuneError && size == 1 {
			p = replacement
		}
		if !k.emit(p) {
			return false
		}
	}
	return true
}

// replacement is U+FFFD in UTF-8.
var replacement = []byte("\uFFFD")

// keyIs reports whether a key's content (esc: it holds escapes) unescapes
// to want.
func keyIs(key []byte, esc bool, want string) bool {
	if !esc {
		return string(key) == want
	}
	k := sink{mode: sinkMatch, rest: want}
	return unescape(key, &k) && k.rest == ""
}

// isString reports whether the string value at v (quotes included)
// unescapes to want.
func isString(v []byte, want string) bool {
	if len(v) < 2 || v[0] != '"' {
		return false
	}
	c := v[1 : len(v)-1]
	for _, b := range c {
		if b == '\\' {
			return keyIs(c, true, want)
		}
	}
	return string(c) == want
}

// hashString returns the hash of a string value's unescaped content
// (value with its quotes), never 0.
func hashString(v []byte) uint64 {
	var d xxhash.Digest
	d.Reset()
	unescape(v[1:len(v)-1], &sink{mode: sinkHash, d: &d})
	if h := d.Sum64(); h != 0 {
		return h
	}
	return 1
}
