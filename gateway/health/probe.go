package health

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// outcome is what one probe found.
type outcome uint8

const (
	// probeOK: a 2xx.
	probeOK outcome = iota
	// probeFailed: no HTTP answer in time, a refused or reset connection,
	// or a status other than 2xx and 404.
	probeFailed
	// probeNone: the node answered, but has no such health endpoint: a
	// 404, an answer that is not HTTP/1.x (a gRPC-only port), or a
	// connection it closed without a byte (only a live process does that).
	probeNone
)

// result is one probe's outcome, for the checker's loop.
type result struct {
	st      *nodeState
	outcome outcome
	detail  string // why, for logs and the admin API
	sent    time.Time
	took    time.Duration
}

// readers pools the probes' response readers: a status line is all a
// probe reads.
var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 512) }}

// probe sends t's request on a fresh connection and reads the status
// line, all within timeout; ctx ending aborts it at once. A fresh
// connection each time: what is probed is that the node answers now, and
// a kept-alive connection to a hung node proves nothing either.
func probe(ctx context.Context, t *target, timeout time.Duration) (outcome, string) {
	deadline := time.Now().Add(timeout)
	d := net.Dialer{Deadline: deadline}
	raw, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return probeFailed, "connect: " + describe(err, timeout)
	}
	defer raw.Close()
	stop := context.AfterFunc(ctx, func() { _ = raw.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if err := raw.SetDeadline(deadline); err != nil {
		return probeFailed, err.Error()
	}
	var c net.Conn = raw
	if t.tls != nil {
		tc := tls.Client(raw, t.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return probeFailed, "tls: " + describe(err, timeout)
		}
		c = tc
	}
	if _, err := c.Write(t.req); err != nil {
		return probeFailed, "write: " + describe(err, timeout)
	}
	br := readers.Get().(*bufio.Reader)
	br.Reset(c)
	defer func() { br.Reset(nil); readers.Put(br) }()
	line, err := br.ReadSlice('\n')
	if err != nil && len(line) == 0 {
		if errors.Is(err, io.EOF) {
			return probeNone, "closed the connection without an HTTP answer"
		}
		return probeFailed, describe(err, timeout)
	}
	if !bytes.HasPrefix(line, []byte("HTTP/1.")) || len(line) < 12 || line[8] != ' ' {
		return probeNone, "answered something other than HTTP/1.x"
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return probeNone, "answered something other than HTTP/1.x"
	}
	// Read the rest (the node closes after it: Connection: close) for a
	// moment, so that closing sends the node a FIN, not a reset.
	_ = c.SetReadDeadline(earliest(deadline, time.Now().Add(drainFor)))
	_, _ = io.CopyN(io.Discard, br, drainMax)
	switch {
	case code >= 200 && code <= 299:
		return probeOK, ""
	case code == 404:
		return probeNone, "404 on " + t.path
	}
	return probeFailed, "status " + strconv.Itoa(code)
}

// How much of an answer's rest a probe reads, and for how long at most.
const (
	drainFor = 50 * time.Millisecond
	drainMax = 64 << 10
)

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// describe names a probe error, a timeout as such.
func describe(err error, timeout time.Duration) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "no answer within " + timeout.String()
	}
	return err.Error()
}
