//go:build !unix

package frontend

import "net"

// peek is unsupported here: the caller reads the first bytes instead.
func peek(net.Conn, []byte) (int, error) { return 0, nil }

// Gone cannot look at the socket here: the client is assumed present
// unless the gateway closed the connection (cancellation then reaches
// nodes only through failed writes).
func (c *clientConn) Gone() bool { return c.closed.Load() }

func (c *clientConn) peekSocket(uintptr) {}
