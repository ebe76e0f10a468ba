//go:build !race

package flow

import (
	"context"
	"testing"
)

// Enter and Leave allocate nothing on the common path, nor Fair once its
// tenants are known.
func TestEnterLeaveAllocatesNothing(t *testing.T) {
	q, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	q.SetLimit(8)
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() {
		if err := q.Enter(ctx, Request{Class: Batch, Tenant: "t"}); err != nil {
			t.Fatal(err)
		}
		q.Leave(Batch)
	}); n != 0 {
		t.Fatalf("%v allocations per Enter/Leave", n)
	}
	f := NewFair[int](1)
	f.Push(Batch, "a", 1, 0)
	if n := testing.AllocsPerRun(1000, func() {
		f.Push(Interactive, "x", 1, 1)
		f.Pop()
	}); n != 0 {
		t.Fatalf("%v allocations per Fair push and pop", n)
	}
}
