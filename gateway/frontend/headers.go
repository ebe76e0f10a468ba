package frontend

import (
	"sync"
	"sync/atomic"

	"github.com/switchyard-dev/switchyard/internal/h2key"
)

// headerCache interns the response header names and values an HTTP/2
// answer relays from a node's HTTP/1.1 response (the HTTP/2 server wants
// strings; the node's are bytes): after warm-up the names and the usual
// values (content types, lengths, servers) are found, not allocated. Its
// maps are immutable and swapped whole when a new entry comes, so lookups
// take no lock; each starts over at maxInterned entries, so values that
// keep changing (Date) cannot crowd out the steady ones for long.
type headerCache struct {
	names  atomic.Pointer[map[string]string]
	values atomic.Pointer[map[string]string]
	mu     sync.Mutex // serialises additions
}

const maxInterned = 512

// name returns k as an HTTP/2 field name: in lower case, "" when k is not
// a valid header name.
func (c *headerCache) name(k []byte) string {
	if m := c.names.Load(); m != nil {
		if s, ok := (*m)[string(k)]; ok {
			return s
		}
	}
	return c.add(&c.names, string(k), h2key.Wire(string(k), nil))
}

// value returns v as a string.
func (c *headerCache) value(v []byte) string {
	if m := c.values.Load(); m != nil {
		if s, ok := (*m)[string(v)]; ok {
			return s
		}
	}
	s := string(v)
	return c.add(&c.values, s, s)
}

// add stores k → v in a copy of *p and returns v.
func (c *headerCache) add(p *atomic.Pointer[map[string]string], k, v string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := p.Load()
	n := 0
	if old != nil && len(*old) < maxInterned {
		n = len(*old)
	}
	m := make(map[string]string, n+1)
	if n > 0 {
		for a, b := range *old {
			m[a] = b
		}
	}
	m[k] = v
	p.Store(&m)
	return v
}
