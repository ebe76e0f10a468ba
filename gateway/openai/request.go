package openai

import "unicode/utf8"

// Rewrite is what RewriteRequest changes in a request body.
type Rewrite struct {
	// Model, when not "", replaces the value of every top-level "model"
	// member (a model alias: the route's upstream name). Engines keep the
	// last of repeated keys; every one is replaced, so they all agree.
	Model string
	// IncludeUsage asks a streamed request's engine for the usage event
	// (stream_options.include_usage), so the gateway can count its
	// tokens, when the client's own stream_options leave room for it.
	IncludeUsage bool
}

// UsageMode says what a streamed request's usage event will be.
type UsageMode uint8

const (
	// UsageNone: the request does not stream ("stream" is not true), or
	// IncludeUsage was not asked. A buffered answer carries its usage.
	UsageNone UsageMode = iota
	// UsageAdded: the gateway added include_usage; the engine will send
	// the usage event and the relay must remove it (StripUsage).
	UsageAdded
	// UsageByClient: the client set stream_options.include_usage to true
	// itself; the usage event is the client's and passes through.
	UsageByClient
	// UsageRefused: the client's stream_options rule it out
	// (include_usage present and not true, continuous_usage_stats set,
	// which include_usage would switch on, or not an object): the body is
	// left as it is and the tokens are not known.
	UsageRefused
)

// RewriteResult is what RewriteRequest found and did.
type RewriteResult struct {
	Changed bool      // the rewritten body was appended to dst; otherwise dst is unchanged and the body goes as it is
	Stream  bool      // "stream" is true (the last "stream" member)
	Usage   UsageMode // what happens to the usage event
	Model   bool      // a top-level "model" was replaced
}

// The member appended or inserted for UsageAdded.
const (
	addStreamOptions = `"stream_options":{"include_usage":true}`
	addIncludeUsage  = `"include_usage":true`
	streamOptionsObj = `{"include_usage":true}`
)

// requestFacts are what a first pass over a request finds.
type requestFacts struct {
	stream     bool
	models     int
	optsIndex  int  // ordinal of the last "stream_options" member among them, -1 if none
	optsCount  int  // "stream_options" members
	optsKind   byte // first byte of its value: '{', 'n' (null), or another
	optsEmpty  bool // its object has no members
	optsUsage  int8 // include_usage in it: 0 absent, 1 true, -1 anything else
	optsStats  bool // continuous_usage_stats in it
	closeBrace int  // offset of the top-level object's '}'
}

// RewriteRequest applies rw to an OpenAI request body (one JSON object),
// appending the new body to dst when something changes, every other
// byte kept as it was. With IncludeUsage, a request whose "stream" is true
// and that has no stream_options gets "stream_options":
// {"include_usage":true} as its last member; a stream_options of null is
// replaced by that object; an object without include_usage and without
// continuous_usage_stats gets "include_usage":true as its first member.
// The result says which, and whether the client asked for the usage
// itself. It returns ErrNotJSON (dst unchanged) when body is not one
// well-formed JSON object. It does not allocate unless dst must grow.
func RewriteRequest(dst, body []byte, rw Rewrite) ([]byte, RewriteResult, error) {
	var res RewriteResult
	f, ok := requestScan(body)
	if !ok {
		return dst, res, ErrNotJSON
	}
	res.Stream = f.stream
	add, fillNull, insert := false, false, false
	if rw.IncludeUsage && f.stream {
		switch {
		case f.optsIndex < 0:
			add, res.Usage = true, UsageAdded
		case f.optsKind == 'n':
			fillNull, res.Usage = true, UsageAdded
		case f.optsKind != '{' || f.optsUsage < 0 || (f.optsUsage == 0 && f.optsStats):
			res.Usage = UsageRefused
		case f.optsUsage > 0:
			res.Usage = UsageByClient
		default:
			insert, res.Usage = true, UsageAdded
		}
	}
	res.Model = rw.Model != "" && f.models > 0
	if !res.Model && !add && !fillNull && !insert {
		return dst, res, nil
	}
	res.Changed = true
	// Second pass: copy, replacing the model values and editing the
	// last stream_options.
	s := scan{b: body}
	s.ws()
	s.eat('{')
	last, opts := 0, 0
	for n := 0; ; n++ {
		key, esc, more, _ := s.member(n)
		if !more {
			break
		}
		vs := s.i
		s.value(1)
		switch {
		case res.Model && textIs(key, esc, "model"):
			dst = append(dst, body[last:vs]...)
			dst = appendString(dst, rw.Model)
			last = s.i
		case (fillNull || insert) && textIs(key, esc, "stream_options"):
			if opts == f.optsIndex {
				if fillNull {
					dst = append(dst, body[last:vs]...)
					dst = append(dst, streamOptionsObj...)
					last = s.i
				} else { // insert after its '{'
					dst = append(dst, body[last:vs+1]...)
					dst = append(dst, addIncludeUsage...)
					if !f.optsEmpty {
						dst = append(dst, ',')
					}
					last = vs + 1
				}
			}
			opts++
		}
	}
	if add {
		dst = append(dst, body[last:f.closeBrace]...)
		dst = append(dst, ',')
		dst = append(dst, addStreamOptions...)
		last = f.closeBrace
	}
	return append(dst, body[last:]...), res, nil
}

// requestScan checks body and finds the facts RewriteRequest needs.
func requestScan(body []byte) (requestFacts, bool) {
	f := requestFacts{optsIndex: -1}
	s := scan{b: body}
	s.ws()
	if !s.eat('{') {
		return f, false
	}
	for n := 0; ; n++ {
		key, esc, more, ok := s.member(n)
		if !ok {
			return f, false
		}
		if !more {
			f.closeBrace = s.i - 1
			break
		}
		vs := s.i
		switch {
		case textIs(key, esc, "stream"):
			ok = s.value(1)
			f.stream = string(body[vs:s.i]) == "true"
		case textIs(key, esc, "model"):
			ok = s.value(1)
			f.models++
		case textIs(key, esc, "stream_options"):
			f.optsIndex, f.optsKind = f.optsCount, s.peek()
			f.optsCount++
			if f.optsKind == '{' {
				f.optsEmpty, f.optsUsage, f.optsStats, ok = s.streamOptions()
			} else {
				ok = s.value(1)
			}
		default:
			ok = s.value(1)
		}
		if !ok {
			return f, false
		}
	}
	return f, s.end()
}

// streamOptions reads a stream_options object.
func (s *scan) streamOptions() (empty bool, usage int8, stats, ok bool) {
	s.i++ // '{'
	n := 0
	for ; ; n++ {
		key, esc, more, ok := s.member(n)
		if !ok {
			return false, 0, false, false
		}
		if !more {
			break
		}
		vs := s.i
		if !s.value(2) {
			return false, 0, false, false
		}
		switch {
		case textIs(key, esc, "include_usage"):
			usage = -1
			if string(s.b[vs:s.i]) == "true" {
				usage = 1
			}
		case textIs(key, esc, "continuous_usage_stats"):
			stats = true
		}
	}
	return n == 0, usage, stats, true
}

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD,
// as encoding/json writes it.
func appendString(dst []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
