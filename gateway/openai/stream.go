package openai

import (
	"bytes"
	"time"
)

// DefaultMaxEvent is the largest event a Stream parses when
// StreamOptions.MaxEvent is 0. vLLM's chunks are a few hundred bytes; a
// first chunk with return_token_ids or large logprobs can be far bigger,
// and is then passed through unparsed (it is never the usage event).
const DefaultMaxEvent = 64 << 10

// KeepAlive is an SSE comment line: clients ignore it, proxies and load
// balancers see bytes. Write it only where AtBoundary says it is safe.
const KeepAlive = ": keep-alive\n\n"

// TokenTimer receives a stream's token timing. Calls come from the
// goroutine that calls Filter; implementations must not block.
// *telemetry.ModelStats implements it.
type TokenTimer interface {
	// FirstToken is the time from the stream's start (StreamOptions.Start)
	// to its first event carrying output.
	FirstToken(d time.Duration)
	// InterToken is the time between two output events.
	InterToken(d time.Duration)
}

// StreamOptions configure a Stream for one answer.
type StreamOptions struct {
	// StripUsage removes the usage-only event ("choices": [] with a
	// "usage" object): set it when the gateway added
	// stream_options.include_usage to the request (UsageAdded).
	StripUsage bool
	// Start is when the request arrived, for the time to first token.
	Start time.Time
	// Timer receives the token timing; nil for none.
	Timer TokenTimer
	// MaxEvent is the largest event held and parsed, in bytes;
	// DefaultMaxEvent when 0. A larger event is passed through as it
	// comes, unparsed.
	MaxEvent int
}

// Stream relays one streamed chat/completions or completions answer
// (text/event-stream) from the node to the client. Fed the node's bytes as
// they come, split anywhere, it hands back whole events unchanged, minus
// the usage-only event when StripUsage is set, and keeps the bytes of an
// unfinished event until its end arrives (at most MaxEvent bytes: a larger
// event is passed on as it comes, unparsed). It reads every event it
// parses: the usage (the last "usage" object seen: the usage event, or
// vLLM's continuous usage stats), the finish reasons, whether "data:
// [DONE]" came, and it times the output events.
//
// Events are separated by a blank line, lines end in "\n", "\r\n" or "\r"
// (the SSE grammar); an event's "data:" lines are joined with "\n" (vLLM
// sends one per event). The output is the input byte for byte except for
// the events removed, whatever the split points: only timing depends on
// them. Output events are the events that arrived in that call: events
// read in one call share its time (InterToken divides the gap since the
// last output event evenly between them).
//
// The zero Stream is ready (Reset sets options); reuse it with Reset. It
// allocates nothing once its buffers have grown to the largest event held.
// Not safe for concurrent use.
type Stream struct {
	o       StreamOptions
	limit   int
	held    []byte // the unfinished event's bytes
	joined  []byte // scratch: an event's data lines joined
	midLine bool   // the current line has bytes
	prevCR  bool   // the last byte was a CR: a LF next belongs to it
	passing bool   // the current event outgrew the limit: passed as it comes
	crEnd   bool   // the last event ended in a CR at the end of the bytes so far
	crKept  bool   // ... and the client got it: so does a LF that completes it

	usage    Usage
	finish   FinishReasons
	done     bool
	errEvent bool
	events   int
	stripped int
	oversize int

	first    bool // an output event came
	firstNow bool // ... in the current call
	ttft     time.Duration
	lastOut  time.Time
	pendOut  int // output events in this call after the reference one
	outCount int
}

// Reset readies s for a new answer, keeping its buffers.
func (s *Stream) Reset(o StreamOptions) {
	held, joined := s.held[:0], s.joined[:0]
	*s = Stream{o: o, held: held, joined: joined, limit: o.MaxEvent}
	if s.limit <= 0 {
		s.limit = DefaultMaxEvent
	}
}

// Filter appends to dst what the client gets of p, the node's next bytes,
// read at now, and returns it. dst must not share memory with p (Reader
// shows the use from an io.Reader relay). The events of p that complete
// output events are timed at now.
func (s *Stream) Filter(dst, p []byte, now time.Time) []byte {
	if s.limit == 0 { // the zero Stream
		s.limit = DefaultMaxEvent
	}
	if s.crEnd && len(p) > 0 {
		// The last event ended in a CR at the end of the previous bytes:
		// a LF now is its CRLF's, and goes (or not) with it.
		s.crEnd = false
		if p[0] == '\n' {
			if s.crKept {
				dst = append(dst, '\n')
			}
			p = p[1:]
		}
	}
	for len(p) > 0 {
		i, lfTail := s.boundary(p)
		if s.passing {
			if i < 0 {
				return append(dst, p...)
			}
			dst = append(dst, p[:i]...)
			p = p[i:]
			s.passing, s.crKept = false, true
			s.oversize++
			s.events++
			continue
		}
		if i < 0 {
			if len(s.held)+len(p) > s.limit {
				dst = append(append(dst, s.held...), p...)
				s.held = s.held[:0]
				s.passing = true
				return dst
			}
			s.held = append(s.held, p...)
			break
		}
		ev := p[:i]
		p = p[i:]
		// An event's size leaves out the LF of its last CRLF, which may
		// come in a later read: the decision must not depend on that.
		size := len(s.held) + len(ev)
		if lfTail {
			size--
		}
		if size > s.limit {
			dst = append(append(dst, s.held...), ev...)
			s.held = s.held[:0]
			s.crKept = true
			s.oversize++
			s.events++
			continue
		}
		if len(s.held) > 0 {
			s.held = append(s.held, ev...)
			ev = s.held
		}
		s.crKept = s.event(ev)
		if s.crKept {
			dst = append(dst, ev...)
		}
		s.held = s.held[:0]
	}
	s.timeOutput(now)
	return dst
}

// Flush appends the bytes of an unfinished last event (the node ended
// the stream inside it), unparsed, and returns dst. Call it at the end of
// the stream, whether it ended cleanly or not.
func (s *Stream) Flush(dst []byte) []byte {
	dst = append(dst, s.held...)
	s.held = s.held[:0]
	return dst
}

// AtBoundary reports whether what Filter returned so far ends with a
// whole event, so a comment (KeepAlive) may be written to the client now.
func (s *Stream) AtBoundary() bool { return !s.passing }

// Usage is the last usage object seen (Found false: none).
func (s *Stream) Usage() Usage { return s.usage }

// FinishReasons are the finish reasons seen, in arrival order.
func (s *Stream) FinishReasons() FinishReasons { return s.finish }

// Done reports whether "data: [DONE]" came.
func (s *Stream) Done() bool { return s.done }

// ErrorEvent reports whether an event carried a top-level "error" (vLLM
// reports a failure inside a stream that way, then sends [DONE]).
func (s *Stream) ErrorEvent() bool { return s.errEvent }

// TTFT is the time from Start to the first output event; ok is false
// before one came.
func (s *Stream) TTFT() (d time.Duration, ok bool) { return s.ttft, s.first }

// Counts are the events seen (parsed or not), the events removed, the
// events passed unparsed for their size, and the output events.
func (s *Stream) Counts() (events, stripped, oversize, output int) {
	return s.events, s.stripped, s.oversize, s.outCount
}

// boundary returns the length of p's prefix that ends the current event
// (through the line end of its blank line), or -1 when p does not end it;
// lfTail reports that the prefix ends with the LF of a CRLF. It carries
// the line state across calls: a blank line's CR at the very end of p
// ends the event, and sets crEnd for the LF that may follow.
func (s *Stream) boundary(p []byte) (n int, lfTail bool) {
	i := 0
	for i < len(p) {
		if s.prevCR {
			s.prevCR = false
			if p[i] == '\n' { // the LF of a CRLF inside the event
				i++
				continue
			}
		}
		j := indexEOL(p[i:])
		if j < 0 {
			s.midLine = true
			return -1, false
		}
		blank := j == 0 && !s.midLine
		s.midLine = false
		i += j
		cr := p[i] == '\r'
		i++
		switch {
		case cr && i < len(p) && p[i] == '\n':
			i++
			if blank {
				return i, true
			}
		case cr && i == len(p):
			if blank {
				s.crEnd = true
				return i, false
			}
			s.prevCR = true
		case blank:
			return i, false
		}
	}
	return -1, false
}

// indexEOL is the index of the first CR or LF in p, or -1.
func indexEOL(p []byte) int {
	j := bytes.IndexByte(p, '\n')
	lim := j
	if j < 0 {
		lim = len(p)
	}
	if k := bytes.IndexByte(p[:lim], '\r'); k >= 0 {
		return k
	}
	return j
}

// event reads one whole event (its bytes through its blank line) and
// reports whether the client gets it.
func (s *Stream) event(ev []byte) bool {
	s.events++
	if s.events == 1 {
		ev = bytes.TrimPrefix(ev, []byte("\xef\xbb\xbf")) // a byte order mark starts the stream
	}
	data, ok := s.data(ev)
	if !ok {
		return true // a comment, or fields without data
	}
	if string(data) == "[DONE]" {
		s.done = true
		return true
	}
	c, ok := parseChunk(data)
	if !ok {
		return true
	}
	if c.usage.Found {
		s.usage = c.usage
	}
	for i := 0; i < c.choices.finish.Len(); i++ {
		s.finish.add(c.choices.finish.At(i))
	}
	if c.err {
		s.errEvent = true
	}
	if c.choices.content {
		s.output()
	}
	if s.o.StripUsage && c.choices.n == 0 && c.usage.Found {
		s.stripped++
		return false
	}
	return true
}

// data returns an event's data: its "data" lines' values joined with
// "\n"; ok is false when it has none.
func (s *Stream) data(ev []byte) (data []byte, ok bool) {
	lines := 0
	for i := 0; i < len(ev); {
		var line []byte
		if j := indexEOL(ev[i:]); j < 0 {
			line, i = ev[i:], len(ev)
		} else {
			line, i = ev[i:i+j], i+j+1
			if ev[i-1] == '\r' && i < len(ev) && ev[i] == '\n' {
				i++
			}
		}
		v, isData := dataValue(line)
		if !isData {
			continue
		}
		switch lines {
		case 0:
			data = v
		case 1:
			s.joined = append(append(append(s.joined[:0], data...), '\n'), v...)
			data = s.joined
		default:
			s.joined = append(append(s.joined, '\n'), v...)
			data = s.joined
		}
		lines++
	}
	return data, lines > 0
}

// dataValue returns the value of a "data" field line ("data:v" or "data:
// v", or a bare "data").
func dataValue(line []byte) ([]byte, bool) {
	const field = "data"
	if len(line) < len(field) || string(line[:len(field)]) != field {
		return nil, false
	}
	rest := line[len(field):]
	switch {
	case len(rest) == 0:
		return rest, true
	case rest[0] != ':':
		return nil, false
	}
	rest = rest[1:]
	if len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	return rest, true
}

// output counts one output event.
func (s *Stream) output() {
	s.outCount++
	if !s.first {
		s.first, s.firstNow = true, true
		return
	}
	s.pendOut++
}

// timeOutput records the timing of the output events of the call that
// ends at now.
func (s *Stream) timeOutput(now time.Time) {
	if s.firstNow {
		s.firstNow = false
		s.ttft = now.Sub(s.o.Start)
		if s.o.Timer != nil {
			s.o.Timer.FirstToken(s.ttft)
		}
		s.lastOut = now
	}
	if s.pendOut == 0 {
		return
	}
	if s.o.Timer != nil {
		each := now.Sub(s.lastOut) / time.Duration(s.pendOut)
		for range s.pendOut {
			s.o.Timer.InterToken(each)
		}
	}
	s.lastOut = now
	s.pendOut = 0
}
