package freeport

import (
	"net"
	"strconv"
	"testing"
)

// The addresses are distinct, below the ephemeral range, and bindable.
func TestLoopback(t *testing.T) {
	addrs, err := Loopback(8)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 8 {
		t.Fatalf("%d addresses, want 8", len(addrs))
	}
	seen := map[string]bool{}
	eph := ephemeralStart()
	for _, a := range addrs {
		if seen[a] {
			t.Errorf("%s twice", a)
		}
		seen[a] = true
		_, p, err := net.SplitHostPort(a)
		if err != nil {
			t.Fatal(err)
		}
		port, _ := strconv.Atoi(p)
		if port < lowest || port >= eph {
			t.Errorf("%s: port outside [%d, %d)", a, lowest, eph)
		}
		ln, err := net.Listen("tcp", a)
		if err != nil {
			t.Errorf("%s is not free: %v", a, err)
			continue
		}
		ln.Close()
	}
}

// A port held by a listener is skipped.
func TestPickSkipsTaken(t *testing.T) {
	two, err := Loopback(2)
	if err != nil {
		t.Fatal(err)
	}
	ports := make([]int, 2)
	for i, a := range two {
		_, p, _ := net.SplitHostPort(a)
		ports[i], _ = strconv.Atoi(p)
	}
	ln, err := net.Listen("tcp", two[0])
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got, err := pick(1, ports)
	if err != nil || len(got) != 1 || got[0] != two[1] {
		t.Errorf("pick(1) with %s held = %v, %v; want [%s]", two[0], got, err, two[1])
	}
	if got, err := pick(2, ports); err == nil {
		t.Errorf("pick(2) with one of two held = %v, want an error", got)
	}
}
