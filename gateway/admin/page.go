package admin

import (
	"bytes"
	"crypto/sha256"
	_ "embed" // the admin page
	"encoding/base64"
	"fmt"
	"net/http"
)

// page is the admin page: one HTML file with its style and script inline,
// no external assets. It reads the JSON admin API only.
//
//go:embed page.html
var page []byte

// pageCSP allows the page's own inline style and script (by their
// SHA-256) and requests to its own origin; nothing else loads, and no
// other site may frame it.
var pageCSP = mustPageCSP(page)

func mustPageCSP(p []byte) string {
	script, err := inlineHash(p, "script")
	if err != nil {
		panic("BUG: admin page: " + err.Error())
	}
	style, err := inlineHash(p, "style")
	if err != nil {
		panic("BUG: admin page: " + err.Error())
	}
	return "default-src 'none'; script-src '" + script + "'; style-src '" + style + "'; connect-src 'self'; " +
		"img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
}

// inlineHash returns the CSP source ('sha256-…' without quotes) of the
// one <tag>…</tag> block of p.
func inlineHash(p []byte, tag string) (string, error) {
	open, end := []byte("<"+tag+">"), []byte("</"+tag+">")
	if bytes.Count(p, open) != 1 || bytes.Count(p, end) != 1 {
		return "", fmt.Errorf("want exactly one <%s> block", tag)
	}
	i := bytes.Index(p, open) + len(open)
	j := bytes.Index(p, end)
	if j < i {
		return "", fmt.Errorf("</%s> before <%s>", tag, tag)
	}
	sum := sha256.Sum256(p[i:j])
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:]), nil
}

// servePage serves the admin page.
func servePage(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	_, _ = w.Write(page)
}
