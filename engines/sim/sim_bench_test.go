package sim

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// BenchmarkCompletionRoundTrip measures the sim's own overhead per
// request (zero modelled time is not allowed, so 1µs steps).
func BenchmarkCompletionRoundTrip(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := Start(ctx, Config{Model: "m", Override: Profile{Slots: 64, Prefill: time.Microsecond, PerToken: time.Microsecond, MaxTokens: 4}})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequestWithContext(ctx, "POST", n.URL()+"/v1/completions", strings.NewReader(`{"prompt":"x"}`))
			resp, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	})
}
