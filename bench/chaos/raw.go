package chaos

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"
)

// rawAnswer is what came back on a raw HTTP/1.1 connection.
type rawAnswer struct {
	status int // 0: no answer
	header http.Header
	body   string
	raw    string // every byte read, headers included
	err    error
}

// dialFrom dials addr from the local IP source ("" for any).
func dialFrom(source, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 3 * time.Second}
	if source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(source)}
	}
	return d.Dial("tcp", addr)
}

// rawHTTP writes payload (a request exactly as written, nothing
// normalised) to addr and reads one answer, within wait.
func rawHTTP(addr, payload string, wait time.Duration) rawAnswer {
	c, err := dialFrom("", addr)
	if err != nil {
		return rawAnswer{err: err}
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, payload); err != nil {
		return rawAnswer{err: err}
	}
	var seen bytes.Buffer
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(c, &seen)), nil)
	if err != nil {
		return rawAnswer{err: err, raw: seen.String()}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	return rawAnswer{status: resp.StatusCode, header: resp.Header, body: string(b), raw: seen.String(), err: err}
}

// postRaw is a POST of a JSON body to path, as written.
func postRaw(path, host, body string, extra ...string) string {
	s := "POST " + path + " HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n"
	for i := 0; i+1 < len(extra); i += 2 {
		s += extra[i] + ": " + extra[i+1] + "\r\n"
	}
	return s + "Connection: close\r\n\r\n" + body
}
