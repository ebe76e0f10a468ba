package flow

import (
	"strings"
	"testing"
)

func popAll(f *Fair[string]) string {
	var out []string
	for {
		v, _, ok := f.Pop()
		if !ok {
			return strings.Join(out, " ")
		}
		out = append(out, v)
	}
}

func TestFairOrder(t *testing.T) {
	cases := []struct {
		name    string
		quantum int
		push    func(f *Fair[string])
		want    string
	}{
		{"fifo within a tenant", 1, func(f *Fair[string]) {
			for _, v := range []string{"a1", "a2", "a3"} {
				f.Push(Interactive, "a", 1, v)
			}
		}, "a1 a2 a3"},
		{"interactive before batch", 1, func(f *Fair[string]) {
			f.Push(Batch, "a", 1, "b1")
			f.Push(Batch, "a", 1, "b2")
			f.Push(Interactive, "x", 1, "i1")
			f.Push(Batch, "a", 1, "b3")
			f.Push(Interactive, "y", 1, "i2")
		}, "i1 i2 b1 b2 b3"},
		{"round robin between tenants", 1, func(f *Fair[string]) {
			for _, v := range []string{"a1", "a2", "a3", "a4"} {
				f.Push(Batch, "a", 1, v)
			}
			f.Push(Batch, "b", 1, "b1")
			f.Push(Batch, "b", 1, "b2")
			f.Push(Batch, "c", 1, "c1")
		}, "a1 b1 c1 a2 b2 a3 a4"},
		{"costs: deficit round robin", 2, func(f *Fair[string]) {
			// a's requests cost 2 (one per turn), b's 1 (two per turn).
			for _, v := range []string{"a1", "a2", "a3"} {
				f.Push(Interactive, "a", 2, v)
			}
			for _, v := range []string{"b1", "b2", "b3", "b4"} {
				f.Push(Interactive, "b", 1, v)
			}
		}, "a1 b1 b2 a2 b3 b4 a3"},
		{"a cost above the quantum waits for credit", 1, func(f *Fair[string]) {
			f.Push(Interactive, "big", 3, "big1")
			for _, v := range []string{"s1", "s2", "s3", "s4"} {
				f.Push(Interactive, "small", 1, v)
			}
		}, "s1 s2 big1 s3 s4"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := NewFair[string](c.quantum)
			c.push(f)
			if got := popAll(f); got != c.want {
				t.Fatalf("order %q, want %q", got, c.want)
			}
			if f.Len() != 0 {
				t.Fatalf("len %d after draining", f.Len())
			}
		})
	}
}

// A tenant that arrives late with a few requests is served within a round,
// not after the backlog of one that came first.
func TestFairNoStarvation(t *testing.T) {
	f := NewFair[string](1)
	for i := 0; i < 1000; i++ {
		f.Push(Batch, "bulk", 1, "bulk")
	}
	for i := 0; i < 5; i++ {
		f.Pop()
	}
	f.Push(Batch, "late", 1, "late")
	for i := 0; i < 2; i++ {
		if v, _, _ := f.Pop(); v == "late" {
			return
		}
	}
	t.Fatal("the late tenant was not served within two pops")
}

func TestFairRemoveAndNewest(t *testing.T) {
	f := NewFair[string](1)
	a := f.Push(Batch, "a", 1, "a1")
	f.Push(Batch, "b", 1, "b1")
	b2 := f.Push(Batch, "b", 1, "b2")
	f.Push(Interactive, "i", 1, "i1")
	if got := f.Newest(Interactive); got != b2 {
		t.Fatal("newest batch item is not b2")
	}
	if f.Newest(Batch) != nil {
		t.Fatal("nothing is below batch")
	}
	if !f.Remove(b2) || f.Remove(b2) {
		t.Fatal("Remove twice")
	}
	if got := f.Newest(Interactive); got == nil || got.Value != "b1" {
		t.Fatalf("newest after removing b2: %v", got)
	}
	if !f.Remove(a) {
		t.Fatal("remove a")
	}
	if got := popAll(f); got != "i1 b1" {
		t.Fatalf("left %q", got)
	}
	if f.LenClass(Batch) != 0 || f.LenClass(Interactive) != 0 {
		t.Fatal("class lengths not zero")
	}
}

func TestParseClass(t *testing.T) {
	for _, c := range []Class{Interactive, Batch} {
		if got, err := ParseClass(strings.ToUpper(c.String())); err != nil || got != c {
			t.Fatalf("%v: %v %v", c, got, err)
		}
	}
	if _, err := ParseClass("urgent"); err == nil {
		t.Fatal("unknown class accepted")
	}
}
