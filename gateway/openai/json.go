package openai

import (
	"encoding/binary"
	"unicode/utf8"
)

// maxDepth bounds nesting, as encoding/json does (its maxNestingDepth).
const maxDepth = 10000

// scan walks one JSON document in place. Its rules are encoding/json's:
// RFC 8259 grammar, strings may hold any bytes but '"', '\\' and control
// characters (invalid UTF-8 is accepted), escapes must be well-formed.
// Nothing is decoded: callers look at the spans it returns.
type scan struct {
	b []byte
	i int
}

func (s *scan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scan) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scan) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// end reports whether only whitespace is left.
func (s *scan) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// str scans the string at s.i and returns its content span (between the
// quotes) and whether it holds escapes.
func (s *scan) str() (start, end int, esc, ok bool) {
	if !s.eat('"') {
		return 0, 0, false, false
	}
	start = s.i
	b := s.b
	for s.i < len(b) {
		// Plain bytes eight at a time, then one at a time: string
		// content (messages, deltas) is most of what is scanned.
		for s.i+8 <= len(b) && plain8(binary.LittleEndian.Uint64(b[s.i:])) {
			s.i += 8
		}
		for s.i < len(b) && strPlain[b[s.i]] {
			s.i++
		}
		if s.i >= len(b) {
			break
		}
		switch c := b[s.i]; {
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

// plain8 reports whether none of the eight bytes in w is '"', '\\' or a
// control character (SWAR: a byte of x is zero exactly when
// (x-0x01..)&^x&0x80.. has its high bit; a byte of w is below 0x20 when
// (w-0x20..)&^w&0x80.. does).
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

// strPlain marks the bytes a string may hold without a second look.
var strPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// value skips one value of any kind.
func (s *scan) value(depth int) bool {
	if depth > maxDepth {
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

func (s *scan) lit(w string) bool {
	if len(s.b)-s.i >= len(w) && string(s.b[s.i:s.i+len(w)]) == w {
		s.i += len(w)
		return true
	}
	return false
}

func (s *scan) digits() int {
	n := 0
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
		n++
	}
	return n
}

func (s *scan) num() bool {
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

// member moves to the next member of the object being walked (its '{'
// consumed): n is the members read so far. It returns the key's content
// span, or more=false at the closing brace; s is then at the value.
func (s *scan) member(n int) (key []byte, esc, more, ok bool) {
	if more, ok = s.next(n, '}'); !more || !ok {
		return nil, false, more, ok
	}
	ks, ke, esc, ok := s.str()
	if !ok {
		return nil, false, false, false
	}
	s.ws()
	if !s.eat(':') {
		return nil, false, false, false
	}
	s.ws()
	return s.b[ks:ke], esc, true, true
}

// elem moves to the next element of the array being walked (its '['
// consumed): n is the elements read so far; more=false at the ']'.
func (s *scan) elem(n int) (more, ok bool) {
	return s.next(n, ']')
}

func (s *scan) next(n int, close byte) (more, ok bool) {
	s.ws()
	if n > 0 {
		if s.eat(close) {
			return false, true
		}
		if !s.eat(',') {
			return false, false
		}
		s.ws()
		return true, true
	}
	if s.eat(close) {
		return false, true
	}
	return true, true
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

// hex4 is the value of four hex digits, negative if one is not.
func hex4(b []byte) rune {
	return unhex(b[0])<<12 | unhex(b[1])<<8 | unhex(b[2])<<4 | unhex(b[3])
}

// textIs reports whether a string's content (as scanned: escapes
// unresolved) decodes to want, which must be ASCII. Names and reasons are
// compared this way, so "us\u0061ge" is "usage" as it is to encoding/json
// and Python's json.
func textIs(raw []byte, esc bool, want string) bool {
	if !esc {
		return string(raw) == want
	}
	j := 0
	for i := 0; i < len(raw); {
		c := raw[i]
		if c == '\\' {
			switch raw[i+1] {
			case 'u':
				r := hex4(raw[i+2 : i+6])
				if r >= utf8.RuneSelf {
					return false // want is ASCII; a surrogate or wider rune never matches
				}
				c = byte(r)
				i += 6
			case 'b':
				c, i = '\b', i+2
			case 'f':
				c, i = '\f', i+2
			case 'n':
				c, i = '\n', i+2
			case 'r':
				c, i = '\r', i+2
			case 't':
				c, i = '\t', i+2
			default: // '"', '\\', '/'
				c, i = raw[i+1], i+2
			}
		} else {
			i++
		}
		if j >= len(want) || want[j] != c {
			return false
		}
		j++
	}
	return j == len(want)
}

// count parses a token count: a JSON integer (no fraction or exponent)
// from 0 to MaxInt64 ("-0" is 0). ok is false otherwise.
func count(raw []byte) (n int64, ok bool) {
	if len(raw) > 0 && raw[0] == '-' {
		return 0, string(raw) == "-0"
	}
	if len(raw) == 0 || len(raw) > 19 {
		return 0, false
	}
	var u uint64
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	if u > 1<<63-1 {
		return 0, false
	}
	return int64(u), true
}
