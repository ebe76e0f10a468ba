package shadow

import (
	"strconv"
	"testing"
)

// TestRecentRing: the ring keeps the last RecentSize reports, oldest
// first, as copies the caller's later changes do not reach.
func TestRecentRing(t *testing.T) {
	var r recent
	if got := r.list(); len(got) != 0 {
		t.Fatalf("empty ring lists %d reports", len(got))
	}
	for _, total := range []int{1, RecentSize - 1, RecentSize, RecentSize + 7, 3 * RecentSize} {
		t.Run(strconv.Itoa(total), func(t *testing.T) {
			var r recent
			for i := 0; i < total; i++ {
				rep := &Report{RequestID: strconv.Itoa(i), Fields: []FieldDiff{{Field: "f"}}}
				r.add(rep)
				rep.RequestID, rep.Fields[0].Field = "changed", "changed"
			}
			got := r.list()
			want := min(total, RecentSize)
			if len(got) != want {
				t.Fatalf("%d reports, want %d", len(got), want)
			}
			for i, rep := range got {
				if id := strconv.Itoa(total - want + i); rep.RequestID != id || rep.Fields[0].Field != "f" {
					t.Fatalf("report %d: id %q field %q, want id %q field f", i, rep.RequestID, rep.Fields[0].Field, id)
				}
			}
		})
	}
}
