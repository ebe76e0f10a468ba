package h2client

import (
	"context"
	"io"
	"net/http"

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
}
