package frontend

import (
	"net/textproto"
	"sync"
	"sync/atomic"
)

// headerCache interns the response header names and values an HTTP/2
// answer copies from a node's HTTP/1.1 response (net/http wants strings
// in a map; the node's are bytes): after warm-up the names and the usual
// values (content types, lengths, servers) are found, not allocated. Its
// maps are immutable and swapped whole when a new entry comes, so lookups
// take no lock; it stops learning at maxInterned entries. Values are
// shared one-element slices: net/http only reads them. When a map is full
// it starts over, so values that keep changing (Date) cannot crowd out
// the steady ones for long.
type headerCache struct {
	keys   atomic.Pointer[map[string]string]
	values atomic.Pointer[map[string][]string]
	mu     sync.Mutex // serialises additions
}

const maxInterned = 512

// key returns the canonical header name for k.
func (c *headerCache) key(k []byte) string {
	if m := c.keys.Load(); m != nil {
		if s, ok := (*m)[string(k)]; ok {
			return s
		}
	}
	canon := textproto.CanonicalMIMEHeaderKey(string(k))
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.keys.Load()
	if old != nil && len(*old) >= maxInterned {
		old = nil
	}
	m := make(map[string]string, 1+lenOf(old))
	if old != nil {
		for a, b := range *old {
			m[a] = b
		}
	}
	m[string(k)] = canon
	c.keys.Store(&m)
	return canon
}

// value returns a one-element slice holding v.
func (c *headerCache) value(v []byte) []string {
	if m := c.values.Load(); m != nil {
		if s, ok := (*m)[string(v)]; ok {
			return s
		}
	}
	vals := []string{string(v)}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.values.Load()
	if old != nil && len(*old) >= maxInterned {
		old = nil
	}
	m := make(map[string][]string, 1+lenOfValues(old))
	if old != nil {
		for a, b := range *old {
			m[a] = b
		}
	}
	m[vals[0]] = vals
	c.values.Store(&m)
	return vals
}

func lenOf(m *map[string]string) int {
	if m == nil {
		return 0
	}
	return len(*m)
}

func lenOfValues(m *map[string][]string) int {
	if m == nil {
		return 0
	}
	return len(*m)
}
