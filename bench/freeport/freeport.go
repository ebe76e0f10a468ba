// Package freeport picks loopback TCP ports for programs that must be
// given their address before they start: nginx and HAProxy configs, and
// topologies of processes that are told each other's addresses.
//
// A port found with a ":0" listener and closed again can be lost before
// the program binds it: every ":0" listener and outgoing connection on
// the machine (other tests, run in parallel) draws from the same
// ephemeral range. Ports here come from below that range
// (net.ipv4.ip_local_port_range), which the kernel never hands out by
// itself, so only a program binding the same number explicitly can take
// one in between.
package freeport

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// lowest is the first port considered: below it are well-known and
// registered services' usual ports.
const lowest = 10000

// Loopback returns n distinct "127.0.0.1:port" addresses, each free when
// Loopback returns (it bound them all, then released them).
func Loopback(n int) ([]string, error) {
	lo, hi := lowest, ephemeralStart()-1
	if hi-lo+1 < 4*n {
		return nil, fmt.Errorf("freeport: no room below the ephemeral range (it starts at %d)", hi+1)
	}
	span := hi - lo + 1
	start := rand.IntN(span)
	ports := make([]int, span)
	for i := range ports {
		ports[i] = lo + (start+i)%span
	}
	return pick(n, ports)
}

// pick returns the first n of ports that it can bind on 127.0.0.1.
func pick(n int, ports []int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	out := make([]string, 0, n)
	for _, p := range ports {
		if len(out) == n {
			break
		}
		addr := "127.0.0.1:" + strconv.Itoa(p)
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue // taken
		}
		lns = append(lns, ln)
		out = append(out, addr)
	}
	if len(out) < n {
		return nil, errors.New("freeport: not enough free ports below the ephemeral range")
	}
	return out, nil
}

// ephemeralStart is the first port of the kernel's ephemeral range;
// Linux's default when it cannot be read.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil && v > 0 {
				return v
			}
		}
	}
	return 32768
}
