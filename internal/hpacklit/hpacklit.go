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
	if i := staticIndex(name); i > 0 {
		dst = appendInt(dst, 0x00, 4, i) // literal, indexed name
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

// staticIndex returns a name's first index in the static table (RFC 7541
// Appendix A), 0 when it has none. A switch, not a map: no hashing.
func staticIndex(name string) uint64 {
	switch name {
	case ":authority":
		return 1
	case ":method":
		return 2
	case ":path":
		return 4
	case ":scheme":
		return 6
	case ":status":
		return 8
	case "accept-charset":
		return 15
	case "accept-encoding":
		return 16
	case "accept-language":
		return 17
	case "accept-ranges":
		return 18
	case "accept":
		return 19
	case "access-control-allow-origin":
		return 20
	case "age":
		return 21
	case "allow":
		return 22
	case "authorization":
		return 23
	case "cache-control":
		return 24
	case "content-disposition":
		return 25
	case "content-encoding":
		return 26
	case "content-language":
		return 27
	case "content-length":
		return 28
	case "content-location":
		return 29
	case "content-range":
		return 30
	case "content-type":
		return 31
	case "cookie":
		return 32
	case "date":
		return 33
	case "etag":
		return 34
	case "expect":
		return 35
	case "expires":
		return 36
	case "from":
		return 37
	case "host":
		return 38
	case "if-match":
		return 39
	case "if-modified-since":
		return 40
	case "if-none-match":
		return 41
	case "if-range":
		return 42
	case "if-unmodified-since":
		return 43
	case "last-modified":
		return 44
	case "link":
		return 45
	case "location":
		return 46
	case "max-forwards":
		return 47
	case "proxy-authenticate":
		return 48
	case "proxy-authorization":
		return 49
	case "range":
		return 50
	case "referer":
		return 51
	case "refresh":
		return 52
	case "retry-after":
		return 53
	case "server":
		return 54
	case "set-cookie":
		return 55
	case "strict-transport-security":
		return 56
	case "transfer-encoding":
		return 57
	case "user-agent":
		return 58
	case "vary":
		return 59
	case "via":
		return 60
	case "www-authenticate":
		return 61
	}
	return 0
}

// AppendNoTable appends a dynamic table size update to 0 (RFC 7541
// §6.3). Put it at the start of a connection's first header block: the
// peer's decoder then knows the table is unused, and a later
// SETTINGS_HEADER_TABLE_SIZE below its default needs no update (some
// decoders, nghttp2's among them, require one after a reduction).
func AppendNoTable(dst []byte) []byte { return append(dst, 0x20) }
