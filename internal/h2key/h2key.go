// Package h2key maps header names between their HTTP/2 wire form (lower
// case) and Go's canonical form, without allocating for the names a
// gateway sees on every request, and finds fields by name.
package h2key

import (
	"net/textproto"
	"strings"

	"golang.org/x/net/http/httpguts"
	"golang.org/x/net/http2/hpack"
)

// common holds the header names a gateway sees on most requests, in
// both forms, in an open-addressed table indexed by a hash of a few of
// their bytes that ignores case. A lookup costs that hash and one or two
// string comparisons; a map of strings hashes the whole name and was a
// tenth of the header work of a proxied gRPC call. Read-only after init.
var common [tableSize]entry

type entry struct{ lower, canon string }

// tableSize is a power of two about three times the number of names, so
// that a probe for a name not in the table ends at an empty slot soon.
const tableSize = 256

var commonNames = [...]string{
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
}

func init() {
	for _, k := range commonNames {
		i := slot(k)
		for common[i].canon != "" {
			i = (i + 1) % tableSize
		}
		common[i] = entry{lower: strings.ToLower(k), canon: k}
	}
}

// slot is where a name's probe starts: a hash of its length and four of
// its bytes, folded to lower case (names are ASCII; the fold maps '-' and
// digits to themselves).
func slot(s string) int {
	n := len(s)
	if n == 0 {
		return 0
	}
	h := uint(n)*0x9e3779b1 ^ uint(s[0]|0x20)*0x85ebca6b ^ uint(s[n-1]|0x20)*0xc2b2ae35 ^
		uint(s[n/2]|0x20)*0x27d4eb2f ^ uint(s[n*3/4]|0x20)*0x165667b1
	return int((h ^ h>>15) % tableSize)
}

// lookupLower returns the canonical key of a common lower-case name.
func lookupLower(name string) (string, bool) {
	for i := slot(name); common[i].canon != ""; i = (i + 1) % tableSize {
		if common[i].lower == name {
			return common[i].canon, true
		}
	}
	return "", false
}

// lookupCanonical returns the wire name of a common canonical key.
func lookupCanonical(k string) (string, bool) {
	for i := slot(k); common[i].canon != ""; i = (i + 1) % tableSize {
		if common[i].canon == k {
			return common[i].lower, true
		}
	}
	return "", false
}

// cacheSize bounds a connection's own cache of names outside the common
// ones: a peer sending endless distinct names cannot grow it.
const cacheSize = 64

// Canonical returns the canonical form of a lower-case wire name. cache
// holds one connection's recent uncommon names (not safe for concurrent
// use; nil: none).
func Canonical(name string, cache map[string]string) string {
	if k, ok := lookupLower(name); ok {
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
	if v, ok := lookupCanonical(k); ok {
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

// Value returns the first value of the field name (lower case) in
// fields, "" when there is none.
func Value(fields []hpack.HeaderField, name string) string {
	for i := range fields {
		if fields[i].Name == name {
			return fields[i].Value
		}
	}
	return ""
}
