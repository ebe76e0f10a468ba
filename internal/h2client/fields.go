package h2client

import (
	"net/http"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// wireNameBytes marks the bytes of a field name as HTTP/2 sends it: the
// token characters but upper-case letters.
var wireNameBytes = func() (t [256]bool) {
	for c := range 128 {
		t[c] = httpguts.IsTokenRune(rune(c)) && (c < 'A' || c > 'Z')
	}
	return t
}()

// validWireName reports whether name is a valid field name in lower case.
func validWireName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !wireNameBytes[name[i]] {
			return false
		}
	}
	return true
}

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
