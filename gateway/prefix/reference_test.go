package prefix

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"

	"github.com/cespare/xxhash/v2"
)

// refResult is what the reference implementation computes.
type refResult struct {
	kind   Kind
	hashes []uint64
	ends   []uint32
	chars  int
	user   uint64
}

// reference is Scan built the obvious way: encoding/json decodes the body
// (maps of json.RawMessage, so repeated keys keep their last value and keys
// match exactly), the stream is built as a byte slice, and the points are
// computed from it with no thinning.
func reference(body []byte, seed uint64) (refResult, error) {
	var r refResult
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return r, ErrMalformed
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return r, ErrMalformed
	}
	var st refStream
	if v, ok := top["messages"]; ok {
		r.kind = Chat
		st.chat(v)
	} else if v, ok := top["prompt"]; ok {
		r.kind = Completion
		st.completion(v)
	} else if v, ok := top["inputs"]; ok {
		r.kind = KServe
		st.kserve(v)
	}
	if u, ok := refString(top["user"]); ok {
		r.user = xxhash.Sum64String(u)
		if r.user == 0 {
			r.user = 1
		}
	}
	r.hashes, r.ends = st.points(seed)
	r.chars = len(st.b)
	return r, nil
}

// refString decodes v when it is a JSON string.
func refString(v json.RawMessage) (string, bool) {
	if len(v) == 0 || v[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		panic("reference: a valid string did not decode: " + err.Error())
	}
	return s, true
}

// refObject decodes v when it is an object or null.
func refObject(v json.RawMessage) (map[string]json.RawMessage, bool) {
	if len(v) == 0 || (v[0] != '{' && v[0] != 'n') {
		return nil, false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil {
		panic("reference: a valid object did not decode: " + err.Error())
	}
	return m, true
}

// refArray decodes v when it is an array.
func refArray(v json.RawMessage) []json.RawMessage {
	if len(v) == 0 || v[0] != '[' {
		return nil
	}
	var a []json.RawMessage
	if err := json.Unmarshal(v, &a); err != nil {
		panic("reference: a valid array did not decode: " + err.Error())
	}
	return a
}

type refStream struct {
	b     []byte
	marks []int // message ends
}

func (s *refStream) end() {
	s.b = append(s.b, sepEnd)
	s.marks = append(s.marks, len(s.b))
}

func (s *refStream) chat(v json.RawMessage) {
	for _, mv := range refArray(v) {
		if len(mv) > 0 && mv[0] != '{' && mv[0] != 'n' {
			continue
		}
		m, _ := refObject(mv)
		role, _ := refString(m["role"])
		s.b = append(s.b, role...)
		s.b = append(s.b, sepRole)
		c := m["content"]
		if text, ok := refString(c); ok {
			s.b = append(s.b, text...)
		} else {
			for _, pv := range refArray(c) {
				if len(pv) == 0 || pv[0] != '{' {
					continue
				}
				p, _ := refObject(pv)
				typ, ok1 := refString(p["type"])
				text, ok2 := refString(p["text"])
				if ok1 && ok2 && typ == "text" {
					s.b = append(s.b, text...)
					s.b = append(s.b, sepPart)
				}
			}
		}
		s.end()
	}
}

func (s *refStream) completion(v json.RawMessage) {
	if text, ok := refString(v); ok {
		s.b = append(s.b, text...)
		s.end()
		return
	}
	if a := refArray(v); len(a) > 0 {
		if text, ok := refString(a[0]); ok {
			s.b = append(s.b, text...)
			s.end()
		}
	}
}

func (s *refStream) kserve(v json.RawMessage) {
	for _, iv := range refArray(v) {
		if len(iv) == 0 || iv[0] != '{' {
			continue
		}
		in, _ := refObject(iv)
		dt, ok := refString(in["datatype"])
		data, has := in["data"]
		if ok && has && dt == "BYTES" {
			s.flatten(data)
		}
	}
}

func (s *refStream) flatten(v json.RawMessage) {
	if text, ok := refString(v); ok {
		s.b = append(s.b, text...)
		s.end()
		return
	}
	for _, e := range refArray(v) {
		s.flatten(e)
	}
}

// points computes the stream's points: the chained block hashes at block
// points and the message ends, in stream order (a block point before a
// message end at the same place).
func (s *refStream) points(seed uint64) ([]uint64, []uint32) {
	var hashes []uint64
	var ends []uint32
	prev := seed
	chain := func(b []byte) uint64 {
		buf := make([]byte, 8, 8+len(b))
		binary.LittleEndian.PutUint64(buf, prev)
		return xxhash.Sum64(append(buf, b...))
	}
	mark := 0
	for pos := 0; ; {
		nextBlock := pos + BlockSize
		// Message ends inside this block (before its end, or at it).
		for mark < len(s.marks) && s.marks[mark] < nextBlock {
			n := s.marks[mark] - pos
			hashes = append(hashes, chain(s.b[pos:s.marks[mark]])^uint64(n))
			ends = append(ends, uint32(s.marks[mark]))
			mark++
		}
		if nextBlock > len(s.b) {
			break
		}
		prev = chain(s.b[pos:nextBlock])
		if k := nextBlock / BlockSize; IsBlockPoint(k) {
			hashes = append(hashes, prev)
			ends = append(ends, uint32(nextBlock))
		}
		pos = nextBlock
		for mark < len(s.marks) && s.marks[mark] == pos {
			hashes = append(hashes, chain(nil))
			ends = append(ends, uint32(pos))
			mark++
		}
	}
	return hashes, ends
}

// compareReference scans body with room for every point and checks the
// result against the reference; it returns a description of the first
// difference, or "".
func compareReference(body []byte, seed uint64) string {
	want, werr := reference(body, seed)
	capacity := len(body) + 64
	hashes := make([]uint64, capacity)
	ends := make([]uint32, capacity)
	got, gerr := Scan(body, seed, hashes, ends)
	switch {
	case werr != nil || gerr != nil:
		if !errors.Is(werr, ErrMalformed) || !errors.Is(gerr, ErrMalformed) {
			return "error: scan " + errString(gerr) + ", reference " + errString(werr)
		}
		return ""
	case got.Kind != want.kind:
		return "kind " + got.Kind.String() + ", reference " + want.kind.String()
	case got.Chars != want.chars:
		return "chars differ"
	case got.User != want.user:
		return "user hash differs"
	case got.Points != len(want.hashes):
		return "point count differs"
	}
	for i := range want.hashes {
		if hashes[i] != want.hashes[i] || ends[i] != want.ends[i] {
			return "point differs"
		}
	}
	return ""
}

// compareChecked runs ScanChecked on body, which must not panic, and
// when Scan accepts body compares their results.
func compareChecked(body []byte, seed uint64) string {
	capacity := len(body) + 64
	hashes, ends := make([]uint64, capacity), make([]uint32, capacity)
	checked, cerr := ScanChecked(body, seed, hashes, ends)
	want := make([]uint64, capacity)
	wantEnds := make([]uint32, capacity)
	res, err := Scan(body, seed, want, wantEnds)
	switch {
	case err != nil:
		return ""
	case cerr != nil:
		return "ScanChecked: " + cerr.Error() + " on a body Scan accepts"
	case checked != res:
		return "ScanChecked's result differs from Scan's"
	}
	for i := range res.Points {
		if hashes[i] != want[i] || ends[i] != wantEnds[i] {
			return "ScanChecked's points differ from Scan's"
		}
	}
	return ""
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}
