package forward

import (
	"net/http"
	"slices"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// TestHTTP2FieldLookups: an HTTP/2 request's view reads its fields as
// they came: headers by canonical name, cookies across crumbs, and the
// trace carrier's Set replaces every value of its key.
func TestHTTP2FieldLookups(t *testing.T) {
	hr, _ := http.NewRequest(http.MethodPost, "http://gw/v1/completions", nil)
	fields := []hpack.HeaderField{
		{Name: "content-type", Value: "application/json"},
		{Name: "cookie", Value: "a=1"}, {Name: "cookie", Value: "b=2; c=\"3\""},
		{Name: "traceparent", Value: "old-1"}, {Name: "x-request-id", Value: "r-1"}, {Name: "traceparent", Value: "old-2"},
	}
	var r Request
	r.SetHTTP2(hr, fields, false)
	for name, want := range map[string]string{"X-Request-Id": "r-1", "Content-Type": "application/json", "X-Absent": "", "X-Request-I": ""} {
		if got := string(r.Header([]byte(name))); got != want {
			t.Errorf("Header(%s) = %q, want %q", name, got, want)
		}
	}
	for name, want := range map[string]string{"a": "1", "b": "2", "c": "3", "d": ""} {
		if got := string(r.Cookie([]byte(name))); got != want {
			t.Errorf("Cookie(%s) = %q, want %q", name, got, want)
		}
	}
	c := traceCarrier{&r}
	c.Set("traceparent", "new")
	c.Set("tracestate", "s")
	var tp []string
	for _, f := range r.fields {
		if f.Name == "traceparent" {
			tp = append(tp, f.Value)
		}
	}
	if !slices.Equal(tp, []string{"new"}) || c.Get("tracestate") != "s" || c.Get("x-request-id") != "r-1" {
		t.Errorf("after Set: traceparent %q, fields %v", tp, r.fields)
	}
	if keys := c.Keys(); len(keys) != 6 {
		t.Errorf("Keys %q, want the 6 fields left", keys)
	}
}
