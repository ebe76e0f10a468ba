package resource

import (
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/discovery"
)

func FuzzDecodeBatch(f *testing.F) {
	pc := peerChange{app: "a", change: change{
		node: discovery.Node{ID: "n", App: "a", Addresses: map[string]string{"http": "h:1"}, State: discovery.StateReady,
			Load: discovery.Load{Utilisation: discovery.Known(0.5), Waiting: discovery.Known(3), Readiness: discovery.ReadinessBusy}},
		owner: 3, inc: 1, seq: 2,
	}}
	lora, err := discovery.NewAdapters([]string{"sql-lora"}, []string{"chat-lora"})
	if err != nil {
		f.Fatal(err)
	}
	withLoRA := pc
	withLoRA.change.node.Load.LoRA, withLoRA.change.node.Load.PrefixCacheQueries = lora, discovery.Known(512)
	for _, v := range []discovery.Version{discovery.Version1, discovery.Version2, discovery.Version3} {
		for _, fr := range encodeBatch(batchChanges, []peerChange{pc, withLoRA}, false, v) {
			f.Add(uint8(v), fr[5:])
		}
		for _, fr := range encodeBatch(batchDumpPart, []peerChange{pc}, true, v) {
			f.Add(uint8(v), fr[5:])
		}
	}
	f.Add(uint8(1), []byte{0, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, v uint8, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		ver := discovery.Version1 + discovery.Version(v%3)
		var in discovery.Interner
		kind, out, err := decodeBatch(b, &in, ver)
		if err != nil {
			if _, ok := err.(*discovery.InputError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if kind > batchDumpEnd {
			t.Fatalf("kind %d accepted", kind)
		}
		for _, pc := range out {
			if pc.app == "" || pc.change.node.ID == "" || pc.change.node.App != pc.app || pc.change.node.Load.Validate() != nil {
				t.Fatalf("accepted %+v", pc)
			}
		}
	})
}

func FuzzParseCredentials(f *testing.F) {
	f.Add([]byte("agents:\n  - {name: a, token_sha256: " + strings.Repeat("ab", 32) + ", apps: [\"team-*\"], node_prefixes: [n-], cidrs: [10.0.0.0/8]}\n" +
		"readers:\n  - {name: r, tls_san: [gw.example]}\npeers:\n  - {name: p, tls_san: [resource]}\napps:\n  x: {max_capacity: 8, max_nodes: 3}\ndefault_app: {max_capacity: 100}\n"))
	f.Add([]byte("agents:\n  - name: a\n    token: s3cret\n"))
	f.Add([]byte("apps: [1, 2]\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<14 {
			return
		}
		cf, err := ParseCredentials(b)
		if err != nil {
			if strings.Contains(err.Error(), "resource.") {
				t.Fatalf("error shows a Go type name: %v", err)
			}
			return
		}
		cs, err := newCredSet("", cf, 1)
		if err != nil {
			t.Fatalf("accepted but unusable: %v", err)
		}
		for _, c := range cs.byHash {
			if c.role == 0 || c.name == "" {
				t.Fatalf("credential without role or name: %+v", c)
			}
		}
	})
}
