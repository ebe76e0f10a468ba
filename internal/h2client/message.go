package h2client

import (
	"context"
	"io"
	"net/http"
	"slices"

	"golang.org/x/net/http2/hpack"
)

// Request is a request as HTTP/2 fields, for Do: a proxy relays a
// client's fields as they came, with no header map on the way.
type Request struct {
	Method, Scheme, Authority, Path string
	// Header holds the fields, names in lower case (a name that is not
	// a valid lower-case field name fails the request). Connection-
	// specific fields (connection, keep-alive, proxy-connection,
	// transfer-encoding, upgrade), host, content-length and trailer are
	// not sent; te only as "trailers".
	Header []hpack.HeaderField
	// Body is nil for none; ContentLength is its length, -1 if unknown
	// (the body is then written as it is read, by a goroutine of its own).
	Body          io.ReadCloser
	ContentLength int64
	// Trailer, when not empty, goes after the body; it is read once the
	// body returned io.EOF, as net/http reads a request's trailers.
	Trailer http.Header
	// Ctx cancels the request (nil: only Do's abort does).
	Ctx context.Context
}

// Response is a node's answer, returned by Do once its headers came.
type Response struct {
	StatusCode int
	// Header holds the answer's fields as received (names in lower case,
	// pseudo-headers left out).
	Header []hpack.HeaderField
	// ContentLength is the declared length, -1 when none was declared.
	ContentLength int64
	// Body is the answer's body (http.NoBody when the headers ended the
	// stream). Close it: an answer not read to its end is reset.
	Body io.ReadCloser
	// Trailer holds the answer's trailers once Body returned io.EOF.
	Trailer []hpack.HeaderField

	room [8]hpack.HeaderField // Header's and Trailer's, for the usual few fields
	used int                  // of room
}

// keep copies fields (the decoder's, valid until its next frame) into the
// answer's room when they fit, else into a slice of their own. The result
// has no spare capacity: a caller's append cannot reach the room.
func (r *Response) keep(fields []hpack.HeaderField) []hpack.HeaderField {
	if len(fields) == 0 {
		return nil
	}
	if r.used+len(fields) > len(r.room) {
		return slices.Clone(fields)
	}
	start := r.used
	r.used += copy(r.room[start:], fields)
	return r.room[start:r.used:r.used]
}
