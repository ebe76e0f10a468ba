package tenant

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Set is one version of the key file: every key's tenant. A Set never
// changes once built; Store swaps in a new one on reload.
//
// Safe for concurrent use.
type Set struct {
	byDigest map[[sha256.Size]byte]*keyed
	tenants  []*Tenant // sorted by name
}

// keyed is a stored key: its digest (kept for the constant-time
// confirmation) and its tenant.
type keyed struct {
	digest [sha256.Size]byte
	tenant *Tenant
}

// Parse parses the content of an API-key file into a Set whose tenants
// all start with full buckets. Errors name the line and the field, never
// a key.
//
// The file:
//
//	keys:
//	  - key: sk-...              # or key_sha256: <64 hex digits>, so the file holds no secret
//	    tenant: team-a            # letters, digits, '.', '_', '-'; up to 64
//	    requests_per_minute: 600  # 0 or absent: unlimited
//	    tokens_per_minute: 200000 # input + output, charged when the usage is known
//	    max_concurrent: 32
//	    priority: interactive     # or batch; default interactive
//	    models: [llama-3-70b]     # optional allowlist
//
// A key is at least MinKeyLength visible ASCII bytes. The entries of one
// tenant (e.g. an old and a new key during a rotation) share the tenant's
// limits, so they must give the same ones. Unknown fields, a field or a
// key given twice, and an empty list are errors.
func Parse(data []byte) (*Set, error) {
	entries, err := parseFile(data)
	if err != nil {
		return nil, fmt.Errorf("tenant: %w", err)
	}
	return build(entries, nil, time.Now()), nil
}

// LoadFile reads and parses the API-key file at path (for a --check
// without serving). Errors start with the path.
func LoadFile(path string) (*Set, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("tenant: %w", err)
	}
	entries, err := parseFile(data)
	if err != nil {
		return nil, fmt.Errorf("tenant: %s: %w", path, err)
	}
	return build(entries, nil, time.Now()), nil
}

// build makes a Set of entries, reusing prev's Tenant of each name that
// stays (its state is kept; its limits are replaced).
func build(entries []entry, prev *Set, now time.Time) *Set {
	s := &Set{byDigest: make(map[[sha256.Size]byte]*keyed, len(entries))}
	byName := make(map[string]*Tenant)
	for _, e := range entries {
		t := byName[e.tenant]
		if t == nil {
			if old, ok := prev.Tenant(e.tenant); ok {
				t = old
				if l := old.Limits(); !l.equal(&e.limits) {
					t.setLimits(e.limits, now)
				}
			} else {
				t = newTenant(e.tenant, e.limits, now)
			}
			byName[e.tenant] = t
			s.tenants = append(s.tenants, t)
		}
		s.byDigest[e.digest] = &keyed{digest: e.digest, tenant: t}
	}
	slices.SortFunc(s.tenants, func(a, b *Tenant) int { return strings.Compare(a.name, b.name) })
	return s
}

// Lookup returns the tenant of key (the raw key, as the client sent it).
// It does not allocate. The key is hashed first, so that neither the map
// lookup nor the comparison ever touches a stored key's bytes.
func (s *Set) Lookup(key []byte) (*Tenant, bool) {
	if s == nil || len(key) == 0 {
		return nil, false
	}
	d := sha256.Sum256(key)
	k, ok := s.byDigest[d]
	if !ok || subtle.ConstantTimeCompare(k.digest[:], d[:]) != 1 {
		return nil, false
	}
	return k.tenant, true
}

// LookupHeaders returns the tenant of a request from the values of its
// Authorization and x-api-key headers (nil when absent): the bearer token
// of Authorization when it carries one, else x-api-key. It does not
// allocate.
func (s *Set) LookupHeaders(authorization, apiKey []byte) (*Tenant, bool) {
	if tok, ok := BearerToken(authorization); ok {
		return s.Lookup(tok)
	}
	return s.Lookup(trimSpace(apiKey))
}

// BearerToken returns the token of an Authorization header value of the
// "Bearer" scheme (matched case-insensitively, RFC 9110 section 11.1),
// without allocating; false for another scheme or no token.
func BearerToken(authorization []byte) ([]byte, bool) {
	const scheme = "bearer "
	v := trimSpace(authorization)
	if len(v) <= len(scheme) {
		return nil, false
	}
	for i := range len(scheme) {
		c := v[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != scheme[i] {
			return nil, false
		}
	}
	tok := trimSpace(v[len(scheme):])
	return tok, len(tok) > 0
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// Tenant returns the tenant called name.
func (s *Set) Tenant(name string) (*Tenant, bool) {
	if s == nil {
		return nil, false
	}
	i, ok := slices.BinarySearchFunc(s.tenants, name, func(t *Tenant, n string) int { return strings.Compare(t.name, n) })
	if !ok {
		return nil, false
	}
	return s.tenants[i], true
}

// Tenants returns every tenant, sorted by name. The slice must not be
// modified.
func (s *Set) Tenants() []*Tenant {
	if s == nil {
		return nil
	}
	return s.tenants
}

// Keys returns how many keys the set holds.
func (s *Set) Keys() int {
	if s == nil {
		return 0
	}
	return len(s.byDigest)
}
