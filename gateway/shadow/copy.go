package shadow

import "github.com/switchyard-dev/switchyard/gateway/reqkey"

// Request is what a Mirror reads from a primary request: its sampling key
// (reqkey.Request) and a copy of it. The forwarding core's request view
// satisfies it for every protocol, so HTTP/1.1, HTTP/2 and gRPC requests
// are mirrored alike.
type Request interface {
	reqkey.Request
	// CopyTo writes the request into c: protocol, method, target, host,
	// headers, and the body if it is already whole. It must not keep c.
	CopyTo(c *Copy) BodyState
}

// BodyState says what CopyTo could do with the body.
type BodyState uint8

const (
	// BodyCopied: the whole body is in the copy (possibly empty).
	BodyCopied BodyState = iota
	// BodyTooLarge: the body is over Config.MaxBodyBytes; nothing is sent.
	BodyTooLarge
	// BodyLater: the body is still arriving (a streamed request body, a
	// gRPC stream); the caller feeds it with Handle.WriteBody and ends it
	// with Handle.EndBody.
	BodyLater
)

// Copy is a mirrored request: what the shadow target receives. It belongs
// to its Handle; a Sender reads it during Send and must not keep it.
type Copy struct {
	// GRPC says the request is a gRPC call (sent over HTTP/2 to the
	// target's gRPC address); otherwise it is an HTTP request.
	GRPC   bool
	Method []byte
	// URI is the request target: path and query.
	URI  []byte
	Host []byte
	Body []byte

	hdr     []byte // header names and values, back to back
	spans   []int  // end offsets in hdr: name, value, name, value...
	maxBody int
}

// AddHeader appends one header; the copy keeps its own bytes.
func (c *Copy) AddHeader(name, value []byte) {
	c.hdr = append(c.hdr, name...)
	c.spans = append(c.spans, len(c.hdr))
	c.hdr = append(c.hdr, value...)
	c.spans = append(c.spans, len(c.hdr))
}

// Headers calls fn for every header in the order they were added. The
// slices are valid during the call only.
func (c *Copy) Headers(fn func(name, value []byte)) {
	start := 0
	for i := 0; i+1 < len(c.spans); i += 2 {
		k, v := c.spans[i], c.spans[i+1]
		fn(c.hdr[start:k], c.hdr[k:v])
		start = v
	}
}

// SetBody copies b as the whole body; false (and no copy) when b is over
// Config.MaxBodyBytes.
func (c *Copy) SetBody(b []byte) bool {
	if len(b) > c.maxBody {
		return false
	}
	c.Body = append(c.Body[:0], b...)
	return true
}

// appendBody appends a piece of a body that arrives later; false when the
// body would pass Config.MaxBodyBytes.
func (c *Copy) appendBody(p []byte) bool {
	if len(c.Body)+len(p) > c.maxBody {
		return false
	}
	c.Body = append(c.Body, p...)
	return true
}

func (c *Copy) reset() {
	c.GRPC = false
	c.Method, c.URI, c.Host, c.Body = c.Method[:0], c.URI[:0], c.Host[:0], c.Body[:0]
	c.hdr, c.spans = c.hdr[:0], c.spans[:0]
}

// Answer is the shadow target's response, filled by a Sender.
type Answer struct {
	Status      int
	ContentType []byte
	// Body is the response body, at most Config.MaxResponseBytes of it;
	// TooLarge says there was more (the fields are then not compared).
	Body     []byte
	TooLarge bool

	max int
}

// Limit is the most body bytes the Mirror compares
// (Config.MaxResponseBytes).
func (a *Answer) Limit() int { return a.max }

// SetBody keeps a bounded copy of b (at most Limit bytes).
func (a *Answer) SetBody(b []byte) {
	if len(b) > a.max {
		a.TooLarge = true
		b = b[:a.max]
	}
	a.Body = append(a.Body[:0], b...)
}

func (a *Answer) reset() {
	a.Status, a.TooLarge = 0, false
	a.ContentType, a.Body = a.ContentType[:0], a.Body[:0]
}
