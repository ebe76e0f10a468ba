package h2client

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/textproto"

	"github.com/switchyard-dev/switchyard/internal/h2key"
	"golang.org/x/net/http2/hpack"
)

// fromHTTP is req as Do's request: its header map as fields, the
// :authority, :path, :method and :scheme RoundTrip documents.
func fromHTTP(req *http.Request) (*Request, error) {
	if req.URL == nil {
		return nil, errors.New("h2client: request has no URL")
	}
	r := &Request{Method: req.Method, Scheme: req.URL.Scheme, Authority: req.Host, Path: req.URL.Opaque,
		Trailer: req.Trailer, Ctx: req.Context()}
	if r.Authority == "" {
		r.Authority = req.URL.Host
	}
	if r.Path == "" || r.Path[0] != '/' || len(r.Path) > 1 && r.Path[1] == '/' {
		r.Path = req.URL.RequestURI()
	}
	r.Header = make([]hpack.HeaderField, 0, len(req.Header))
	for k, vv := range req.Header {
		name := h2key.Wire(k, nil)
		if name == "" {
			return nil, fmt.Errorf("%w: %q", errInvalidFieldName, k)
		}
		for _, v := range vv {
			r.Header = append(r.Header, hpack.HeaderField{Name: name, Value: v})
		}
	}
	// net/http's convention: no body, or a zero ContentLength with a body
	// for a length not known.
	if req.Body != nil && req.Body != http.NoBody {
		r.Body, r.ContentLength = req.Body, req.ContentLength
		if r.ContentLength == 0 {
			r.ContentLength = -1
		}
	}
	return r, nil
}

// toHTTP is resp as net/http's answer to req: header maps with canonical
// keys, the trailers the answer announced listed before they come, and
// Trailer filled when the body reads io.EOF.
func toHTTP(resp *Response, req *http.Request) *http.Response {
	hr := &http.Response{
		Status:        statusLine(resp.StatusCode),
		StatusCode:    resp.StatusCode,
		Proto:         "HTTP/2.0",
		ProtoMajor:    2,
		Header:        fieldMap(resp.Header),
		ContentLength: resp.ContentLength,
		Request:       req,
		Body:          resp.Body,
	}
	for _, v := range hr.Header["Trailer"] {
		for _, k := range splitList(v) {
			if hr.Trailer == nil {
				hr.Trailer = make(http.Header)
			}
			hr.Trailer[textproto.CanonicalMIMEHeaderKey(k)] = nil
		}
	}
	if resp.Body != http.NoBody {
		hr.Body = &httpBody{ReadCloser: resp.Body, resp: resp, hr: hr}
	}
	return hr
}

// fieldMap is fields as a header map with canonical keys.
func fieldMap(fields []hpack.HeaderField) http.Header {
	h := make(http.Header, len(fields))
	for _, hf := range fields {
		k := h2key.Canonical(hf.Name, nil)
		h[k] = append(h[k], hf.Value)
	}
	return h
}

// httpBody is an answer's body for RoundTrip: its trailers go into the
// http.Response when it ends.
type httpBody struct {
	io.ReadCloser
	resp *Response
	hr   *http.Response
	done bool
}

func (b *httpBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF && !b.done {
		b.done = true
		if len(b.resp.Trailer) > 0 && b.hr.Trailer == nil {
			b.hr.Trailer = make(http.Header, len(b.resp.Trailer))
		}
		for _, hf := range b.resp.Trailer {
			k := h2key.Canonical(hf.Name, nil)
			if b.hr.Trailer[k] == nil {
				b.hr.Trailer[k] = []string{hf.Value} // replaces an announcement's nil
			} else {
				b.hr.Trailer[k] = append(b.hr.Trailer[k], hf.Value)
			}
		}
	}
	return n, err
}
