package forward

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2/hpack"
)

// clientRequest is a request over HTTP/2 (gRPC when grpc) with one header.
func clientRequest(grpc bool, name, value string) *Request {
	hr, _ := http.NewRequest(http.MethodPost, "http://gw/v1/completions", nil)
	var fields []hpack.HeaderField
	if name != "" {
		fields = append(fields, hpack.HeaderField{Name: strings.ToLower(name), Value: value})
	}
	var r Request
	r.SetHTTP2(hr, fields, grpc)
	return &r
}

// TestClientTimeout: grpc-timeout in every unit for gRPC calls,
// X-Switchyard-Timeout in seconds otherwise; each header only for its own
// protocol; malformed values are ErrBadRequest naming the header.
func TestClientTimeout(t *testing.T) {
	for _, tc := range []struct {
		grpc        bool
		name, value string
		want        time.Duration
		ok, bad     bool
	}{
		{false, "", "", 0, false, false},
		{false, "X-Switchyard-Timeout", "2", 2 * time.Second, true, false},
		{false, "X-Switchyard-Timeout", "0.25", 250 * time.Millisecond, true, false},
		{false, "X-Switchyard-Timeout", "1e300", maxClientTimeout, true, false},
		{false, "X-Switchyard-Timeout", "0", 0, false, true},
		{false, "X-Switchyard-Timeout", "-1", 0, false, true},
		{false, "X-Switchyard-Timeout", "NaN", 0, false, true},
		{false, "X-Switchyard-Timeout", "Inf", 0, false, true},
		{false, "X-Switchyard-Timeout", "2s", 0, false, true},
		{false, "Grpc-Timeout", "2S", 0, false, false}, // not a gRPC call
		{true, "X-Switchyard-Timeout", "2", 0, false, false},
		{true, "Grpc-Timeout", "3H", 3 * time.Hour, true, false},
		{true, "Grpc-Timeout", "2M", 2 * time.Minute, true, false},
		{true, "Grpc-Timeout", "2S", 2 * time.Second, true, false},
		{true, "Grpc-Timeout", "500m", 500 * time.Millisecond, true, false},
		{true, "Grpc-Timeout", "7u", 7 * time.Microsecond, true, false},
		{true, "Grpc-Timeout", "99999999n", 99999999, true, false},
		{true, "Grpc-Timeout", "99999999H", maxClientTimeout, true, false},
		{true, "Grpc-Timeout", "123456789S", 0, false, true}, // 9 digits
		{true, "Grpc-Timeout", "S", 0, false, true},
		{true, "Grpc-Timeout", "5", 0, false, true},
		{true, "Grpc-Timeout", "5s", 0, false, true},
		{true, "Grpc-Timeout", "-5S", 0, false, true},
	} {
		d, ok, err := clientRequest(tc.grpc, tc.name, tc.value).ClientTimeout()
		if d != tc.want || ok != tc.ok || (err != nil) != tc.bad {
			t.Errorf("grpc %v %s: %q: %v %v %v, want %v %v bad %v", tc.grpc, tc.name, tc.value, d, ok, err, tc.want, tc.ok, tc.bad)
		}
		if err != nil && (!errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tc.name)) {
			t.Errorf("%q: error %v, want ErrBadRequest naming %s", tc.value, err, tc.name)
		}
	}
}

// FuzzClientTimeout: any header value gives a timeout in [0,
// maxClientTimeout] or ErrBadRequest, never a panic.
func FuzzClientTimeout(f *testing.F) {
	for _, s := range []string{"2S", "500m", "99999999H", "0n", "1.5", "1e9", "x", ""} {
		f.Add(true, s)
		f.Add(false, s)
	}
	f.Fuzz(func(t *testing.T, grpc bool, v string) {
		name := "X-Switchyard-Timeout"
		if grpc {
			name = "Grpc-Timeout"
		}
		d, ok, err := clientRequest(grpc, name, v).ClientTimeout()
		switch {
		case err != nil && (ok || !errors.Is(err, ErrBadRequest)):
			t.Fatalf("%q: %v %v %v", v, d, ok, err)
		case ok && (d < 0 || d > maxClientTimeout):
			t.Fatalf("%q: %v out of range", v, d)
		}
	})
}
