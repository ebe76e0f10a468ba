// Package reqkey says where a request's sticky key comes from (a header, a
// cookie, or the client address) and reads it without allocating. The A/B
// splitter and the shadow sampler share it, so "the same user" means the
// same thing to both.
//
// It also holds StrictKeys, the check that custom YAML unmarshalers in the
// gateway use to refuse unknown fields.
//
// It reads requests through Request, a three-method view that the
// forwarding core's request (any protocol) satisfies; it never imports a
// server library.
//
// Everything here is safe for concurrent use.
package reqkey

import (
	"fmt"
	"net/textproto"
	"reflect"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config says where the key comes from. The first source present on the
// request wins: Header, then Cookie, then the client IP address.
//
// In YAML it is a mapping {header: X-User-Id, cookie: uid} or one of the
// scalars "header:NAME", "cookie:NAME" and "client_addr".
type Config struct {
	// Header names a request header holding the key (default "": unused).
	Header string `yaml:"header"`
	// Cookie names a cookie holding the key (default "": unused).
	Cookie string `yaml:"cookie"`
}

// Source says where a key came from.
type Source uint8

const (
	// None: the request had no key (no header, cookie or usable address).
	None Source = iota
	// Header: from Config.Header.
	Header
	// Cookie: from Config.Cookie.
	Cookie
	// Addr: from the client IP address.
	Addr
)

// Extractor reads keys as its Config says. The zero value uses only the
// client address.
type Extractor struct {
	header, cookie []byte
}

// New returns the Extractor for c. The header name is matched in any
// case (it is kept in canonical form, as servers normalise names).
func New(c Config) Extractor {
	x := Extractor{cookie: []byte(c.Cookie)}
	if c.Header != "" {
		x.header = []byte(textproto.CanonicalMIMEHeaderKey(c.Header))
	}
	return x
}

// Request is what a key is read from. Implementations must not allocate
// in these methods; results alias the request's memory and must not be
// modified.
type Request interface {
	// Header returns the value of the header named name (as configured;
	// matched case-insensitively), nil when absent.
	Header(name []byte) []byte
	// Cookie returns the value of the cookie named name, nil when absent.
	Cookie(name []byte) []byte
	// ClientIP returns the client's address as 4 (IPv4) or 16 bytes, nil
	// when unknown or unspecified.
	ClientIP() []byte
}

// Key returns r's key and where it came from. The key aliases r's memory:
// use it while the request lasts. It does not allocate.
func (x Extractor) Key(r Request) ([]byte, Source) {
	if len(x.header) > 0 {
		if k := r.Header(x.header); len(k) > 0 {
			return k, Header
		}
	}
	if len(x.cookie) > 0 {
		if k := r.Cookie(x.cookie); len(k) > 0 {
			return k, Cookie
		}
	}
	if ip := r.ClientIP(); len(ip) > 0 {
		return ip, Addr
	}
	return nil, None
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (c *Config) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		kind, name, _ := strings.Cut(n.Value, ":")
		switch {
		case kind == "header" && name != "":
			*c = Config{Header: name}
		case kind == "cookie" && name != "":
			*c = Config{Cookie: name}
		case n.Value == "client_addr" || n.Value == "addr" || n.Value == "":
			*c = Config{}
		default:
			return fmt.Errorf("key: line %d: %q: want header:NAME, cookie:NAME, client_addr or {header, cookie}", n.Line, n.Value)
		}
		return nil
	}
	if err := StrictKeys(n, Config{}, "key: "); err != nil {
		return err
	}
	type plain Config
	return n.Decode((*plain)(c))
}

// WithPrefix returns err with prefix in front of its message, unless the
// message starts with it already (an error from a nested level). It keeps
// err for errors.Is and errors.As.
func WithPrefix(prefix string, err error) error {
	if err == nil || strings.HasPrefix(err.Error(), prefix) {
		return err
	}
	return &prefixed{prefix, err}
}

type prefixed struct {
	prefix string
	err    error
}

func (p *prefixed) Error() string { return p.prefix + p.err.Error() }
func (p *prefixed) Unwrap() error { return p.err }

// StrictKeys refuses mapping keys of n that are not yaml tags of v's
// struct type. yaml.v3's KnownFields does not reach into custom
// unmarshalers, so each one checks its own level; where prefixes the
// message (e.g. "compare: ").
func StrictKeys(n *yaml.Node, v any, where string) error {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	t := reflect.TypeOf(v)
	known := map[string]bool{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
		if tag != "" && tag != "-" {
			known[tag] = true
			names = append(names, tag)
		}
	}
	sort.Strings(names)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !known[k.Value] {
			return fmt.Errorf("%sline %d: unknown field %q (known: %s)", where, k.Line, k.Value, strings.Join(names, ", "))
		}
	}
	return nil
}
