package gateway

import (
	"net/http"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/config"
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

// TestSessionAffinity: with affinity.session_header, requests that carry
// the same header value go to one node; with affinity.session_from_user,
// those with the same OpenAI "user" field do, whatever their prompts
// (short and unrelated here, so no prefix matches), while different
// sessions spread over the route. Without either, the same requests
// spread by load (the control: the test can fail).
func TestSessionAffinity(t *testing.T) {
	for _, tc := range []struct {
		name    string
		set     func(*config.AffinityConfig)
		session func(id string) (hdr []string, user string)
		sticky  bool
	}{
		{"header", func(a *config.AffinityConfig) { a.SessionHeader = "X-Chat-Session" },
			func(id string) ([]string, string) { return []string{"X-Chat-Session", id}, "" }, true},
		{"user", func(a *config.AffinityConfig) { a.SessionFromUser = true },
			func(id string) ([]string, string) { return nil, id }, true},
		{"off", func(*config.AffinityConfig) {},
			func(id string) ([]string, string) { return []string{"X-Chat-Session", id}, id }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var urls []string
			for _, n := range []string{"a", "b", "c"} {
				urls = append(urls, backend(t, n, nil).URL)
			}
			rc := staticRoute("m", urls...)
			tc.set(&rc.Affinity)
			gw := startGateway(t, testConfig(rc))
			c := testClient()
			homes := map[string]bool{}
			moved := 0
			for _, id := range []string{"s1", "s2", "s3", "s4", "s5", "s6"} {
				hdr, user := tc.session(id)
				home := ""
				for q := range 5 {
					body := `{"model":"m","messages":[{"role":"user","content":"question ` + itoa(q) + ` of ` + id + `"}]`
					if user != "" {
						body += `,"user":"` + user + `"`
					}
					resp, b := post(t, c, gw.url("/v1/chat/completions"), body+"}", hdr...)
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("%s request %d: %d %s", id, q, resp.StatusCode, b)
					}
					node := resp.Header.Get("X-Node")
					switch {
					case home == "":
						home = node
						homes[node] = true
					case node != home:
						moved++
						if tc.sticky {
							t.Errorf("session %s: request %d went to %s, its session is on %s", id, q, node, home)
						}
					}
				}
			}
			if tc.sticky && len(homes) < 2 {
				t.Errorf("six sessions all on %v", homes)
			}
			if !tc.sticky && moved == 0 {
				t.Error("without session affinity every session still kept its node: the test cannot tell")
			}
		})
	}
}
