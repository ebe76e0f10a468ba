package gateway

import (
	"net/http"
	"strings"
	"testing"
)

// TestPrefixAffinity: the turns of one conversation go to the node that
// holds its prefix (its KV cache), while conversations with nothing in
// common spread over the route by load. (Conversations that share a long
// system prompt share its node until load or popularity moves them: see
// balancer.Affinity.)
func TestPrefixAffinity(t *testing.T) {
	var urls []string
	for _, n := range []string{"a", "b", "c"} {
		urls = append(urls, backend(t, n, nil).URL)
	}
	gw := startGateway(t, testConfig(staticRoute("m", urls...)))
	c := testClient()
	system := strings.Repeat("You are a careful assistant who answers in full sentences. ", 20)
	turn := func(conv string, n int) string {
		t.Helper()
		msgs := `{"role":"system","content":"` + conv + ": " + system + `"}`
		for i := 0; i < n; i++ {
			msgs += `,{"role":"user","content":"question ` + itoa(i) + ` of ` + conv + `: ` + strings.Repeat("tell me more ", 10) + `"}`
			msgs += `,{"role":"assistant","content":"answer ` + itoa(i) + `: ` + strings.Repeat("here is more ", 10) + `"}`
		}
		resp, b := post(t, c, gw.url("/v1/chat/completions"), `{"model":"m","messages":[`+msgs+`]}`)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s turn %d: %d %s", conv, n, resp.StatusCode, b)
		}
		return resp.Header.Get("X-Node")
	}
	spread := map[string]bool{}
	for _, conv := range []string{"alpha", "beta", "gamma", "delta", "epsilon", "zeta"} {
		first := turn(conv, 1)
		spread[first] = true
		for n := 2; n <= 5; n++ {
			if got := turn(conv, n); got != first {
				t.Errorf("conversation %s: turn %d went to %s, its prefix is on %s", conv, n, got, first)
			}
		}
	}
	if len(spread) < 2 {
		t.Errorf("six conversations all started on %v", spread)
	}
}
