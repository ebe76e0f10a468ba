//go:build !race

package balancer

import "testing"

// Affinity picks allocate nothing: prefix hits and misses, sessions,
// adapters, retries.
func TestAffinityPickAllocatesNothing(t *testing.T) {
	r := newAffRoute(t, AffinityConfig{}, 1, 2, 3, 4, 5, 6, 7, 8)
	r.rep["n3"] = NodeReport{Adapters: []string{"a"}, HitRate: -1}
	r.rebuild(staticNodes(1, 2, 3, 4, 5, 6, 7, 8), 0)
	c := &conversation{system: 1, id: 1, sysLen: 3000}
	warm := c.request(500)
	r.pick(t, warm)
	follow := c.request(500)
	miss := (&conversation{system: 2, id: 2, sysLen: 100}).request(5000)
	session := &AffinityRequest{Session: AffinityKey([]byte("s"))}
	adapter := &AffinityRequest{Adapter: AffinityKey([]byte("a"))}
	avoid := []*Endpoint{r.endpoint("n0")}
	for name, req := range map[string]*AffinityRequest{"follow": follow, "miss": miss, "session": session, "adapter": adapter} {
		if n := testing.AllocsPerRun(1000, func() {
			if _, err := r.aff.Pick(r.t, req, avoid); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations per pick", name, n)
		}
	}
}
