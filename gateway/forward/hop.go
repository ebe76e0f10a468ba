package forward

import "bytes"

// Headers that a Connection header names are hop-by-hop too (RFC 9110
// §7.6.1): a proxy removes them with the Connection header itself, on
// requests and on answers.

// ConnectionTokens calls f with each header name a Connection header
// value lists (comma-separated, trimmed), leaving out close and
// keep-alive, which name no header.
func ConnectionTokens(conn []byte, f func(name []byte)) {
	for len(conn) > 0 {
		tok := conn
		if i := bytes.IndexByte(conn, ','); i >= 0 {
			tok, conn = conn[:i], conn[i+1:]
		} else {
			conn = nil
		}
		tok = bytes.TrimSpace(tok)
		if len(tok) == 0 || bytes.EqualFold(tok, []byte("close")) || bytes.EqualFold(tok, []byte("keep-alive")) {
			continue
		}
		f(tok)
	}
}

// ConnectionListed reports whether a Connection header value conn names
// the header name.
func ConnectionListed(conn, name []byte) bool {
	listed := false
	ConnectionTokens(conn, func(tok []byte) {
		listed = listed || bytes.EqualFold(tok, name)
	})
	return listed
}
