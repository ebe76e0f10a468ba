package h2client

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/switchyard-dev/switchyard/internal/h2key"
)

// canonicalKey returns the canonical form of a lower-case wire name
// (reader only).
func (cc *conn) canonicalKey(name string) string { return h2key.Canonical(name, cc.canon) }

// statusLines holds Response.Status for the codes 100 to 999.
var statusLines = func() (t [900]string) {
	for i := range t {
		code := i + 100
		t[i] = strings.TrimSpace(strconv.Itoa(code) + " " + http.StatusText(code))
	}
	return t
}()

func statusLine(code int) string { return statusLines[code-100] }

func splitList(v string) []string {
	var out []string
	for p := range strings.SplitSeq(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// validPath reports whether p may go as :path: no control bytes or
// spaces.
func validPath(p string) bool {
	if p == "" {
		return false
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
