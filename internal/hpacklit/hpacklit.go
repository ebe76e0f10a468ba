// Package hpacklit encodes HTTP/2 header blocks as HPACK literals: names
// from the static table where it has them, values as plain strings, no
// Huffman coding and no dynamic table (RFC 7541 §6.2.2, "literal header
// field without indexing").
//
// x/net's hpack.Encoder searches its tables and Huffman-codes every
// string; with the dynamic table off (the gateway's headers carry unique
// values such as request IDs) that work buys a few bytes on a loopback
// or data-centre link and cost about 8 % of the gateway's CPU per gRPC
// call. Every HPACK decoder reads literals.
package hpacklit

// Append appends the field name: value to dst and returns it. name must
// be a lower-case HTTP/2 field name (or a pseudo-header).
func Append(dst []byte, name, value string) []byte {
	if i, ok := staticName[name]; ok {
		dst = appendInt(dst, 0x00, 4, uint64(i)) // literal, indexed name
	} else {
		dst = append(dst, 0x00) // literal, new name
		dst = appendString(dst, name)
	}
	return appendString(dst, value)
}

// appendInt appends n with an N-bit prefix (RFC 7541 §5.1) after the
// high bits in first.
func appendInt(dst []byte, first byte, prefix uint8, n uint64) []byte {
	limit := uint64(1)<<prefix - 1
	if n < limit {
		return append(dst, first|byte(n))
	}
	dst = append(dst, first|byte(limit))
	n -= limit
	for n >= 128 {
		dst = append(dst, byte(n&0x7f)|0x80)
		n >>= 7
	}
	return append(dst, byte(n))
}

// appendString appends s as a plain (not Huffman-coded) string literal.
func appendString(dst []byte, s string) []byte {
	dst = appendInt(dst, 0x00, 7, uint64(len(s)))
	return append(dst, s...)
}

// staticName maps names to their first index in the static table (RFC
// 7541 Appendix A).
var staticName = map[string]uint8{
	":authority": 1, ":method": 2, ":path": 4, ":scheme": 6, ":status": 8,
	"accept-charset": 15, "accept-encoding": 16, "accept-language": 17, "accept-ranges": 18,
	"accept": 19, "access-control-allow-origin": 20, "age": 21, "allow": 22, "authorization": 23,
	"cache-control": 24, "content-disposition": 25, "content-encoding": 26, "content-language": 27,
	"content-length": 28, "content-location": 29, "content-range": 30, "content-type": 31,
	"cookie": 32, "date": 33, "etag": 34, "expect": 35, "expires": 36, "from": 37, "host": 38,
	"if-match": 39, "if-modified-since": 40, "if-none-match": 41, "if-range": 42,
	"if-unmodified-since": 43, "last-modified": 44, "link": 45, "location": 46, "max-forwards": 47,
	"proxy-authenticate": 48, "proxy-authorization": 49, "range": 50, "referer": 51, "refresh": 52,
	"retry-after": 53, "server": 54, "set-cookie": 55, "strict-transport-security": 56,
	"transfer-encoding": 57, "user-agent": 58, "vary": 59, "via": 60, "www-authenticate": 61,
}

// AppendNoTable appends a dynamic table size update to 0 (RFC 7541
// §6.3). Put it at the start of a connection's first header block: the
// peer's decoder then knows the table is unused, and a later
// SETTINGS_HEADER_TABLE_SIZE below its default needs no update (some
// decoders, nghttp2's among them, require one after a reduction).
func AppendNoTable(dst []byte) []byte { return append(dst, 0x20) }
