package prefix

import (
	"encoding/binary"
	"math"
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// BlockSize is the length in bytes of a hashed block of the prompt stream:
// about 16 tokens, vLLM's default KV block, and GIE's prefix block.
const BlockSize = 64

// Separators of the stream: after a message's role, between the text
// parts of one message, and at a message's end. Control characters that
// text rarely holds, so that messages ["ab"] and ["a", "b"] differ.
const (
	sepRole = 0x1E
	sepPart = 0x1D
	sepEnd  = 0x1F
)

// IsBlockPoint reports whether the end of block n (counted from 1) is a
// point: the first 8 blocks, then 4 per octave (n whose bits below its
// three leading ones are zero).
func IsBlockPoint(n int) bool {
	if n < 8 {
		return n > 0
	}
	shift := bits.Len(uint(n)) - 3
	return n&(1<<shift-1) == 0
}

// keepFirst is how many of the shallowest points thinning never drops.
const keepFirst = 8

// stream is the chained block hash of the prompt text and the points
// written so far.
type stream struct {
	// buf holds the previous block's hash (or the seed) in its first 8
	// bytes and the current block's bytes after it.
	buf    [8 + BlockSize]byte
	n      int // bytes of the current block
	total  int // bytes streamed
	blocks int // full blocks hashed

	hashes []uint64
	ends   []uint32
	np     int
}

func putSeed(buf *[8 + BlockSize]byte, seed uint64) {
	binary.LittleEndian.PutUint64(buf[:8], seed)
}

// write appends p to the stream, hashing every full block.
func (s *stream) write(p []byte) bool {
	for len(p) > 0 {
		k := copy(s.buf[8+s.n:], p)
		s.n += k
		s.total += k
		p = p[k:]
		if s.n == BlockSize {
			h := xxhash.Sum64(s.buf[:])
			putSeed(&s.buf, h)
			s.n = 0
			s.blocks++
			if IsBlockPoint(s.blocks) {
				s.point(h)
			}
		}
	}
	return true
}

func (s *stream) writeByte(c byte) {
	b := [1]byte{c}
	s.write(b[:])
}

// messageEnd ends a message: the stream so far, unfinished block
// included, is a point.
func (s *stream) messageEnd() {
	s.writeByte(sepEnd)
	// Hashing the chain and the n bytes after it differs from any block
	// hash, which always covers 8+BlockSize bytes.
	s.point(xxhash.Sum64(s.buf[:8+s.n]) ^ uint64(s.n))
}

// point records a point at the current end of the stream, thinning the
// points when the caller's slices are full.
func (s *stream) point(h uint64) {
	c := len(s.hashes)
	if c == 0 {
		return
	}
	if s.np == c {
		s.thin()
	}
	end := uint32(math.MaxUint32)
	if s.total < math.MaxUint32 {
		end = uint32(s.total)
	}
	s.hashes[s.np], s.ends[s.np] = h, end
	s.np++
}

// thin drops every other point after the first keepFirst (fewer for tiny
// slices), so the points span the whole prompt ever more sparsely.
func (s *stream) thin() {
	c := len(s.hashes)
	if c < 4 {
		// Too few to thin: the deepest point replaces the last one.
		s.np = c - 1
		return
	}
	keep := min(keepFirst, c/2)
	w := keep
	for r := keep; r < s.np; r += 2 {
		s.hashes[w], s.ends[w] = s.hashes[r], s.ends[r]
		w++
	}
	s.np = w
}

// text streams the unescaped content of the string value v (with its
// quotes).
func (s *stream) text(v []byte) {
	unescape(v[1:len(v)-1], &sink{mode: sinkStream, st: s})
}

// chat streams the messages array v: each message's role, sepRole, its
// content's text, sepEnd.
func (s *stream) chat(v []byte) {
	if v[0] != '[' {
		return
	}
	sc := scanner{b: v, checked: true}
	sc.array(0, func(lo, hi int) {
		m := v[lo:hi]
		var role, content span
		switch m[0] {
		case '{':
			ms := scanner{b: m, checked: true}
			ms.object(0, func(key []byte, esc bool, lo, hi int) {
				switch {
				case keyIs(key, esc, "role"):
					role = span{lo, hi, true}
				case keyIs(key, esc, "content"):
					content = span{lo, hi, true}
				}
			})
		case 'n': // null reads as a message with nothing in it
		default:
			return
		}
		if role.ok && m[role.lo] == '"' {
			s.text(m[role.lo:role.hi])
		}
		s.writeByte(sepRole)
		if content.ok {
			c := m[content.lo:content.hi]
			switch c[0] {
			case '"':
				s.text(c)
			case '[':
				s.parts(c)
			}
		}
		s.messageEnd()
	})
}

// parts streams the text of a content array's {"type":"text"} parts, each
// followed by sepPart.
func (s *stream) parts(v []byte) {
	sc := scanner{b: v, checked: true}
	sc.array(0, func(lo, hi int) {
		p := v[lo:hi]
		if p[0] != '{' {
			return
		}
		var typ, text span
		ps := scanner{b: p, checked: true}
		ps.object(0, func(key []byte, esc bool, lo, hi int) {
			switch {
			case keyIs(key, esc, "type"):
				typ = span{lo, hi, true}
			case keyIs(key, esc, "text"):
				text = span{lo, hi, true}
			}
		})
		if typ.ok && text.ok && isString(p[typ.lo:typ.hi], "text") && p[text.lo] == '"' {
			s.text(p[text.lo:text.hi])
			s.writeByte(sepPart)
		}
	})
}

// completion streams a prompt: a string, or the first element of an array
// when it is a string.
func (s *stream) completion(v []byte) {
	switch v[0] {
	case '"':
		s.text(v)
		s.messageEnd()
	case '[':
		sc := scanner{b: v, checked: true}
		first := true
		sc.array(0, func(lo, hi int) {
			if first && v[lo] == '"' {
				s.text(v[lo:hi])
				s.messageEnd()
			}
			first = false
		})
	}
}

// kserve streams the string data of a KServe v2 body's BYTES inputs.
func (s *stream) kserve(v []byte) {
	if v[0] != '[' {
		return
	}
	sc := scanner{b: v, checked: true}
	sc.array(0, func(lo, hi int) {
		in := v[lo:hi]
		if in[0] != '{' {
			return
		}
		var dtype, data span
		is := scanner{b: in, checked: true}
		is.object(0, func(key []byte, esc bool, lo, hi int) {
			switch {
			case keyIs(key, esc, "datatype"):
				dtype = span{lo, hi, true}
			case keyIs(key, esc, "data"):
				data = span{lo, hi, true}
			}
		})
		if dtype.ok && data.ok && isString(in[dtype.lo:dtype.hi], "BYTES") {
			s.strings(in[data.lo:data.hi], 0)
		}
	})
}

// strings streams every string in v, an array nested any number of times
// (a tensor's data), each as a message.
func (s *stream) strings(v []byte, depth int) {
	switch v[0] {
	case '"':
		s.text(v)
		s.messageEnd()
	case '[':
		sc := scanner{b: v, checked: true}
		sc.array(depth, func(lo, hi int) { s.strings(v[lo:hi], depth+1) })
	}
}
