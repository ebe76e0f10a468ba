//go:build !race

package route

import (
	"testing"

	"github.com/switchyard-dev/switchyard/gateway/config"
)

// AdapterKey runs on every request of a route with affinity: it must not
// allocate.
func TestAdapterKeyAllocs(t *testing.T) {
	st := testSet(t, config.RouteConfig{Name: "llama", Match: config.MatchConfig{Models: []string{"llama"}, Adapters: []string{"sql-lora", "tenant-*"}}})
	r := st.Route("llama")
	for _, m := range []string{"sql-lora", "tenant-42", "llama"} {
		model := []byte(m)
		if n := testing.AllocsPerRun(100, func() { r.AdapterKey(model) }); n != 0 {
			t.Errorf("AdapterKey(%s) allocates %v times", m, n)
		}
	}
}
