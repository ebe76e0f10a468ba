package split

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/textproto"
	"sort"

	"github.com/cespare/xxhash/v2"

	"github.com/switchyard-dev/switchyard/gateway/reqkey"
)

// Source says how an Assignment was made.
type Source uint8

// Sources of an assignment.
const (
	// SourceRandom: no key on the request, assigned at random by weight.
	SourceRandom Source = iota
	// SourceOverride: forced by the override header.
	SourceOverride
	// SourceHeader: sticky key from Config.Key.Header.
	SourceHeader
	// SourceCookie: sticky key from Config.Key.Cookie.
	SourceCookie
	// SourceAddr: sticky key from the client IP address.
	SourceAddr
)

var sourceNames = [...]string{"random", "override", "header", "cookie", "addr"}

func (s Source) String() string {
	if int(s) < len(sourceNames) {
		return sourceNames[s]
	}
	return fmt.Sprintf("Source(%d)", s)
}

// Assignment is the outcome of one assignment.
type Assignment struct {
	// Index of the variant in Config.Variants; use Splitter.Variant.
	Index int
	// Source says how the variant was chosen.
	Source Source
	// Bucket is the key's bucket (-1 for overrides and random picks).
	Bucket int
}

// VariantInfo is a resolved variant. Its byte slices are owned by the
// Splitter and must not be modified.
type VariantInfo struct {
	Name   string
	Target string
	Weight float64
	// Buckets is the number of buckets the variant owns.
	Buckets int

	name []byte
}

// NameBytes returns the name for header writes without allocating; the
// slice must not be modified.
func (v *VariantInfo) NameBytes() []byte { return v.name }

// Splitter assigns requests to variants. It is immutable after New and safe
// for concurrent use; it must not be copied.
type Splitter struct {
	_ noCopy

	// immutable after New
	cfg      Config
	variants []VariantInfo
	// upper[i] is the exclusive upper bucket bound of variant i; variant i
	// owns [upper[i-1], upper[i]).
	upper          []uint32
	buckets        uint64
	seed           uint64
	overrideHeader []byte
	variantHeader  []byte
	key            reqkey.Extractor
	overridable    []bool
	metrics        *metrics
}

// New validates cfg (after filling defaults) and builds a Splitter.
func New(cfg Config, opts ...Option) (*Splitter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	s := &Splitter{
		cfg:            cfg,
		buckets:        uint64(cfg.Buckets),
		seed:           xxhash.Sum64String(cfg.Salt),
		overrideHeader: []byte(textproto.CanonicalMIMEHeaderKey(cfg.OverrideHeader)),
		variantHeader:  []byte(cfg.VariantHeader),
		key:            reqkey.New(cfg.Key),
	}
	if cfg.OverrideHeader == "-" {
		s.overrideHeader = nil
	}
	quotas := Quotas(cfg.Variants, cfg.Buckets)
	s.variants = make([]VariantInfo, len(cfg.Variants))
	s.upper = make([]uint32, len(cfg.Variants))
	s.overridable = make([]bool, len(cfg.Variants))
	var cum uint32
	for i, v := range cfg.Variants {
		cum += uint32(quotas[i])
		s.upper[i] = cum
		s.variants[i] = VariantInfo{Name: v.Name, Target: v.Target, Weight: v.Weight, Buckets: quotas[i], name: []byte(v.Name)}
		s.overridable[i] = len(cfg.Overridable) == 0
	}
	for _, name := range cfg.Overridable {
		for i := range s.variants {
			if s.variants[i].Name == name {
				s.overridable[i] = true
			}
		}
	}
	m, err := newMetrics(o.meter, o.registry, o.route, s.variants)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	return s, nil
}

// Quotas splits n buckets between the variants in proportion to their
// weights with the largest-remainder method (ties go to the earlier
// variant), so the quotas sum to exactly n. Weights must be valid (see
// Config.Validate).
func Quotas(vs []Variant, n int) []int {
	var sum float64
	for _, v := range vs {
		sum += v.Weight
	}
	q := make([]int, len(vs))
	rem := make([]float64, len(vs))
	left := n
	for i, v := range vs {
		exact := v.Weight / sum * float64(n)
		q[i] = int(math.Floor(exact))
		rem[i] = exact - float64(q[i])
		left -= q[i]
	}
	order := make([]int, len(vs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return rem[order[a]] > rem[order[b]] })
	for k := 0; left > 0 && k < len(order); k++ {
		if vs[order[k]].Weight > 0 {
			q[order[k]]++
			left--
		}
	}
	return q
}

// Len returns the number of variants.
func (s *Splitter) Len() int { return len(s.variants) }

// Variant returns variant i (0 <= i < Len). The result must not be
// modified.
func (s *Splitter) Variant(i int) *VariantInfo { return &s.variants[i] }

// VariantHeader returns the response header name that carries the serving
// variant; the slice must not be modified.
func (s *Splitter) VariantHeader() []byte { return s.variantHeader }

// Config returns a copy of the Config the Splitter was built from, with
// defaults filled in.
func (s *Splitter) Config() Config {
	c := s.cfg
	c.Variants = append(Variants(nil), c.Variants...)
	c.Overridable = append([]string(nil), c.Overridable...)
	return c
}

// Bucket returns the bucket of key, in [0, Config.Buckets).
func (s *Splitter) Bucket(key []byte) int {
	return int(mix64(xxhash.Sum64(key)^s.seed) % s.buckets)
}

// ByBucket returns the variant that owns bucket b.
func (s *Splitter) ByBucket(b int) int {
	u := uint32(b)
	for i, hi := range s.upper {
		if u < hi {
			return i
		}
	}
	return len(s.upper) - 1
}

// Assign returns the variant index for key. It does not allocate.
func (s *Splitter) Assign(key []byte) int {
	return s.ByBucket(s.Bucket(key))
}

// Lookup returns the index of the variant named name, or -1.
func (s *Splitter) Lookup(name []byte) int {
	for i := range s.variants {
		if string(s.variants[i].name) == string(name) {
			return i
		}
	}
	return -1
}

// AssignRequest assigns one request: the override header first (when set,
// known and overridable), then the sticky key (Config.Key), then at random
// by weight. It does not allocate and does not keep r. An override naming
// an unknown or non-overridable variant is ignored and counted.
func (s *Splitter) AssignRequest(r reqkey.Request) Assignment {
	if s.overrideHeader != nil {
		if v := r.Header(s.overrideHeader); len(v) > 0 {
			if i := s.Lookup(v); i >= 0 && s.overridable[i] {
				return Assignment{Index: i, Source: SourceOverride, Bucket: -1}
			}
			s.metrics.overrideRejected.Add(1)
			s.metrics.rejected.Add(context.Background(), 1, s.metrics.routeAttrs...)
		}
	}
	k, src := s.key.Key(r)
	if src == reqkey.None {
		return s.AssignRandom()
	}
	b := s.Bucket(k)
	return Assignment{Index: s.ByBucket(b), Source: keySources[src], Bucket: b}
}

// keySources maps where a key came from to the assignment's Source.
var keySources = [...]Source{reqkey.Header: SourceHeader, reqkey.Cookie: SourceCookie, reqkey.Addr: SourceAddr}

// AssignRandom picks a variant at random in proportion to the weights.
func (s *Splitter) AssignRandom() Assignment {
	return Assignment{Index: s.ByBucket(int(rand.Uint64N(s.buckets))), Source: SourceRandom, Bucket: -1}
}

// AssignAddr assigns by client IP address (for callers without a
// RequestCtx, e.g. gRPC). An empty or unspecified address is random.
func (s *Splitter) AssignAddr(ip net.IP) Assignment {
	if len(ip) == 0 || ip.IsUnspecified() {
		return s.AssignRandom()
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	b := s.Bucket(ip)
	return Assignment{Index: s.ByBucket(b), Source: SourceAddr, Bucket: b}
}

// mix64 is the murmur3 64-bit finalizer; it spreads the salted hash before
// the modulo.
func mix64(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// noCopy makes go vet's copylocks check flag copies of a Splitter or
// a Registry.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
