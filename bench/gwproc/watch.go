package gwproc

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
)

// The messages of the gateway's startup lines that carry its bound
// addresses (attribute addr), in the order it logs them: the admin line
// (when it has an admin listener) comes before the client line.
const (
	AdminMsg  = "gateway: admin listening"
	ClientMsg = "gateway: listening"
)

// maxLine is the longest line Watcher reads; longer lines are passed on
// but not parsed.
const maxLine = 64 << 10

// Watcher is an io.Writer for a gateway's log output (slog text or JSON,
// one record a line): it passes everything on to its destination and
// learns the addresses from the startup lines. Safe for concurrent use.
type Watcher struct {
	dst   io.Writer
	found chan struct{}

	mu            sync.Mutex
	line          []byte // the unfinished line
	overlong      bool   // the unfinished line passed maxLine: skip it
	client, admin string
}

// NewWatcher returns a Watcher writing to dst.
func NewWatcher(dst io.Writer) *Watcher {
	return &Watcher{dst: dst, found: make(chan struct{})}
}

// Write passes p on to the destination and reads the lines in it.
func (w *Watcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.dst.Write(p)
	if w.client == "" {
		w.scan(p[:n])
	}
	return n, err
}

// scan reads p's complete lines, keeping an unfinished one for the next
// write. Called with mu held.
func (w *Watcher) scan(p []byte) {
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.keep(p)
			return
		}
		w.keep(p[:i])
		if !w.overlong {
			w.read(w.line)
		}
		w.line, w.overlong = w.line[:0], false
		if w.client != "" {
			return
		}
		p = p[i+1:]
	}
}

func (w *Watcher) keep(p []byte) {
	if w.overlong || len(w.line)+len(p) > maxLine {
		w.overlong = true
		return
	}
	w.line = append(w.line, p...)
}

// read records the address of a startup line.
func (w *Watcher) read(line []byte) {
	msg, addr := LineAddr(line)
	if msg != AdminMsg && msg != ClientMsg {
		return
	}
	addr, ok := dialable(addr)
	if !ok {
		return
	}
	if msg == AdminMsg {
		w.admin = addr
		return
	}
	w.client = addr
	close(w.found)
}

// Found is closed once the client line is in: the admin address, when
// the gateway has one, was logged before it.
func (w *Watcher) Found() <-chan struct{} { return w.found }

// Addrs returns the client and admin addresses learned so far ("" for
// one not logged yet).
func (w *Watcher) Addrs() (client, admin string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.client, w.admin
}

// LineAddr returns the msg and addr attributes of a log line in slog's
// JSON or text format ("" for one it lacks).
func LineAddr(line []byte) (msg, addr string) {
	line = bytes.TrimSpace(line)
	if bytes.HasPrefix(line, []byte("{")) {
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal(line, &rec) != nil {
			return "", ""
		}
		return rec.Msg, rec.Addr
	}
	s := string(line)
	for s != "" && (msg == "" || addr == "") {
		var key, val string
		var ok bool
		if key, val, s, ok = textAttr(s); !ok {
			break
		}
		switch key {
		case "msg":
			msg = val
		case "addr":
			addr = val
		}
	}
	return msg, addr
}

// textAttr splits the first key=value off s as slog's text handler
// writes it: the value bare up to a space, or quoted as strconv.Quote
// does.
func textAttr(s string) (key, val, rest string, ok bool) {
	s = strings.TrimLeft(s, " ")
	key, rest, ok = strings.Cut(s, "=")
	if !ok || key == "" || strings.ContainsAny(key, " \"") {
		return "", "", "", false
	}
	if strings.HasPrefix(rest, `"`) {
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return "", "", "", false
		}
		if val, err = strconv.Unquote(q); err != nil {
			return "", "", "", false
		}
		return key, val, rest[len(q):], true
	}
	val, rest, _ = strings.Cut(rest, " ")
	return key, val, rest, true
}

// dialable checks a logged host:port and turns an unspecified host
// (0.0.0.0, ::) into the loopback address, so that it can be dialled.
func dialable(addr string) (string, bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port == "" || port == "0" {
		return "", false
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		host = "127.0.0.1"
		if ip.Is6() {
			host = "::1"
		}
	}
	return net.JoinHostPort(host, port), true
}
