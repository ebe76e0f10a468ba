// Package h2key maps header names between their HTTP/2 wire form (lower
// case) and Go's canonical form, without allocating for the names a
// gateway sees on every request.
package h2key

import (
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Common header names, both ways: lower-case wire names to canonical
// keys, and back. Read-only after init.
var (
	commonCanonical = map[string]string{}
	commonLower     = map[string]string{}
)

func init() {
	for _, k := range []string{
		"Accept", "Accept-Charset", "Accept-Encoding", "Accept-Language", "Accept-Ranges",
		"Access-Control-Allow-Credentials", "Access-Control-Allow-Headers", "Access-Control-Allow-Methods",
		"Access-Control-Allow-Origin", "Access-Control-Expose-Headers", "Access-Control-Max-Age",
		"Access-Control-Request-Headers", "Access-Control-Request-Method", "Age", "Allow", "Authorization",
		"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
		"Content-Location", "Content-Range", "Content-Type", "Cookie", "Date", "Etag", "Expect", "Expires",
		"From", "Host", "If-Match", "If-Modified-Since", "If-None-Match", "If-Range", "If-Unmodified-Since",
		"Last-Modified", "Link", "Location", "Max-Forwards", "Origin", "Priority", "Proxy-Authenticate",
		"Proxy-Authorization", "Range", "Referer", "Refresh", "Retry-After", "Server", "Set-Cookie",
		"Strict-Transport-Security", "Te", "Trailer", "Traceparent", "Tracestate", "Transfer-Encoding",
		"User-Agent", "Vary", "Via", "Www-Authenticate", "X-Api-Key", "X-Forwarded-For", "X-Forwarded-Host",
		"X-Forwarded-Proto", "X-Request-Id", "X-Real-Ip", "Grpc-Accept-Encoding", "Grpc-Encoding",
		"Grpc-Message", "Grpc-Status", "Grpc-Status-Details-Bin", "Grpc-Timeout", "Baggage",
	} {
		l := strings.ToLower(k)
		commonCanonical[l] = k
		commonLower[k] = l
	}
}

// cacheSize bounds a connection's own cache of names outside the common
// ones: a peer sending endless distinct names cannot grow it.
const cacheSize = 64

// Canonical returns the canonical form of a lower-case wire name. cache
// holds one connection's recent uncommon names (not safe for concurrent
// use; nil: none).
func Canonical(name string, cache map[string]string) string {
	if k, ok := commonCanonical[name]; ok {
		return k
	}
	if k, ok := cache[name]; ok {
		return k
	}
	k := textproto.CanonicalMIMEHeaderKey(name)
	if cache != nil && len(cache) < cacheSize {
		cache[name] = k
	}
	return k
}

// Wire returns a header key as an HTTP/2 field name (lower case), "" when
// it is not a valid field name. cache is as for Canonical.
func Wire(k string, cache map[string]string) string {
	if v, ok := commonLower[k]; ok {
		return v
	}
	if !hasUpper(k) {
		if !httpguts.ValidHeaderFieldName(k) {
			return ""
		}
		return k
	}
	if v, ok := cache[k]; ok {
		return v
	}
	if !httpguts.ValidHeaderFieldName(k) {
		return ""
	}
	v := strings.ToLower(k)
	if cache != nil && len(cache) < cacheSize {
		cache[k] = v
	}
	return v
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}
