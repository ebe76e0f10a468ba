package discovery

import (
	"fmt"
	"sort"
	"testing"
	"time"
)

func TestClientApply(t *testing.T) {
	c := &Client{}
	v := &view{}
	node := func(id string, st State) Node {
		return Node{ID: id, App: "a", Addresses: map[string]string{"http": "h:1"}, State: st}
	}
	ids := func(l OnlineList) string {
		var s []string
		for _, n := range l.Nodes {
			s = append(s, n.ID+":"+n.State.String())
		}
		sort.Strings(s)
		return fmt.Sprint(s)
	}
	steps := []struct {
		name    string
		d       Delta
		changed bool
		want    string
	}{
		{"reset", Delta{App: "a", Epoch: 1, To: 3, Reset: true, Upserts: []Node{node("a", StateReady), node("b", StateReady), node("c", StateReady)}}, true, "[a:ready b:ready c:ready]"},
		{"delta", Delta{App: "a", Epoch: 1, From: 3, To: 5, Upserts: []Node{node("b", StateDraining), node("d", StateReady)}, Removes: []string{"a"}}, true, "[b:draining c:ready d:ready]"},
		{"no change", Delta{App: "a", Epoch: 1, From: 5, To: 5}, false, "[b:draining c:ready d:ready]"},
		{"wrong base", Delta{App: "a", Epoch: 1, From: 4, To: 6, Removes: []string{"b"}}, false, "[b:draining c:ready d:ready]"},
		{"reset other epoch", Delta{App: "a", Epoch: 2, To: 1, Reset: true, Upserts: []Node{node("c", StateReady)}}, true, "[c:ready]"},
		{"remove unknown", Delta{App: "a", Epoch: 2, From: 1, To: 2, Removes: []string{"zz", "c"}}, true, "[]"},
	}
	var prev OnlineList
	for _, st := range steps {
		before := ids(prev)
		l, changed := c.apply(v, "s", &st.d)
		if changed != st.changed {
			t.Fatalf("%s: changed %v", st.name, changed)
		}
		if ids(prev) != before {
			t.Fatalf("%s: the previous list was modified", st.name)
		}
		if changed {
			prev = l
		}
		if got := ids(v.list); got != st.want {
			t.Fatalf("%s: got %s want %s", st.name, got, st.want)
		}
	}
}

func TestClientCoalescesLoadOnlyDeltas(t *testing.T) {
	c := &Client{cfg: ClientConfig{LoadCoalesce: time.Hour}}
	v := &view{}
	n := func(id string, st State, util float64) Node {
		return Node{ID: id, App: "a", Addresses: map[string]string{"http": "h:1"}, State: st, Load: Load{Utilisation: Known(util)}}
	}
	if _, ch := c.apply(v, "s", &Delta{App: "a", Epoch: 1, To: 1, Reset: true, Upserts: []Node{n("a", StateReady, 0.1), n("b", StateReady, 0.1)}}); !ch {
		t.Fatal("reset must deliver")
	}
	if _, ch := c.apply(v, "s", &Delta{App: "a", Epoch: 1, From: 1, To: 2, Upserts: []Node{n("a", StateReady, 0.9)}}); ch {
		t.Fatal("a load-only delta must be held")
	}
	if v.version != 2 {
		t.Fatalf("a held delta is acknowledged: version %d", v.version)
	}
	l, ch := c.apply(v, "s", &Delta{App: "a", Epoch: 1, From: 2, To: 3, Upserts: []Node{n("b", StateDraining, 0.1)}})
	if !ch || l.Version != 3 {
		t.Fatal("a state change must deliver at once")
	}
	for _, x := range l.Nodes {
		if (x.ID == "a" && x.Load.Utilisation != Known(0.9)) || (x.ID == "b" && x.State != StateDraining) {
			t.Fatalf("delivered list lacks the held or new change: %+v", l.Nodes)
		}
	}
	// Held too long: the next (empty) answer delivers.
	c.cfg.LoadCoalesce = time.Nanosecond
	c.apply(v, "s", &Delta{App: "a", Epoch: 1, From: 3, To: 4, Upserts: []Node{n("a", StateReady, 0.2)}})
	held := n("a", StateReady, 0.3)
	v.held = map[string]*Node{"a": &held}
	v.heldSince = time.Now().Add(-time.Second)
	if l, ch := c.apply(v, "s", &Delta{App: "a", Epoch: 1, From: 4, To: 4}); !ch || l.Nodes[v.index["a"]].Load.Utilisation != Known(0.3) {
		t.Fatal("a due hold must be delivered on an empty answer")
	}
}

// TestClientDeliversReadinessAtOnce: an engine turning busy, asleep or not
// ready decides whether a gateway picks the node, so a delta that changes
// readiness is not held with load-only deltas.
func TestClientDeliversReadinessAtOnce(t *testing.T) {
	c := &Client{cfg: ClientConfig{LoadCoalesce: time.Hour}}
	v := &view{}
	n := Node{ID: "a", App: "a", Addresses: map[string]string{"http": "h:1"}, State: StateReady, Load: Load{Readiness: ReadinessReady}}
	if _, ch := c.apply(v, "s", &Delta{App: "a", Epoch: 1, To: 1, Reset: true, Upserts: []Node{n}}); !ch {
		t.Fatal("reset must deliver")
	}
	n.Load.Running = Known(3)
	if _, ch := c.apply(v, "s", &Delta{App: "a", Epoch: 1, From: 1, To: 2, Upserts: []Node{n}}); ch {
		t.Fatal("a load-only delta must be held")
	}
	n.Load.Readiness = ReadinessAsleep
	l, ch := c.apply(v, "s", &Delta{App: "a", Epoch: 1, From: 2, To: 3, Upserts: []Node{n}})
	if !ch || l.Nodes[0].Load.Readiness != ReadinessAsleep || l.Nodes[0].Load.Running != Known(3) {
		t.Fatalf("readiness change: delivered %v, list %+v", ch, l.Nodes)
	}
}
