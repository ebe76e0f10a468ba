package gateway

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/switchyard-dev/switchyard/engines/kserve"
)

// TestGRPCUnaryOneDataFrame: a unary call reaches its node as a HEADERS
// frame and one DATA frame carrying both the message and the end of the
// stream (the gateway read the client's end with the message), not as
// the message and then an empty DATA frame to end it.
func TestGRPCUnaryOneDataFrame(t *testing.T) {
	node, calls := frameNode(t)
	gw := startGateway(t, testConfig(RouteConfig{Name: "m", Match: MatchConfig{Models: []string{"m"}}, Nodes: []NodeConfig{{GRPC: node}}}))
	cc := grpcClient(t, gw.addr)
	msg := kserve.InferRequest{ModelName: "m", ID: "frames"}.Marshal()
	for i := range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var out []byte
		err := cc.Invoke(ctx, mInfer, msg, &out)
		cancel()
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if !bytes.Equal(out, msg) {
			t.Fatalf("call %d answered %q, want the echo %q", i, out, msg)
		}
		var frames []string
		select {
		case frames = <-calls:
		case <-time.After(5 * time.Second):
			t.Fatal("the node saw no call")
		}
		want := []string{"HEADERS", fmt.Sprintf("DATA %d END_STREAM", 5+len(msg))}
		if fmt.Sprint(frames) != fmt.Sprint(want) {
			t.Fatalf("call %d: the node read frames %q, want %q", i, frames, want)
		}
	}
}

// frameNode is a gRPC node written on HTTP/2 frames (x/net/http2's
// Framer): it records the HEADERS and DATA frames of each request stream
// (sent on calls when the stream ends) and answers with the request's
// body echoed, then grpc-status 0.
func frameNode(t *testing.T) (addr string, calls <-chan []string) {
	t.Helper()
	ch := make(chan []string, 16)
	return connNode(t, 30*time.Second, func(c net.Conn) { _ = serveFrames(c, ch) }), ch
}

// serveFrames is frameNode's side of one connection.
func serveFrames(c net.Conn, calls chan<- []string) error {
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(c, preface); err != nil || string(preface) != http2.ClientPreface {
		return fmt.Errorf("no client preface: %q, %v", preface, err)
	}
	fr := http2.NewFramer(c, c)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	if err := fr.WriteSettings(); err != nil {
		return err
	}
	var hbuf bytes.Buffer
	enc := hpack.NewEncoder(&hbuf)
	headers := func(fields ...string) []byte {
		hbuf.Reset()
		for i := 0; i < len(fields); i += 2 {
			_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]})
		}
		return hbuf.Bytes()
	}
	frames := map[uint32][]string{}
	bodies := map[uint32][]byte{}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return err
		}
		id := f.Header().StreamID
		ended := f.Header().Flags.Has(http2.FlagDataEndStream)
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				if err := fr.WriteSettingsAck(); err != nil {
					return err
				}
			}
			continue
		case *http2.PingFrame:
			if !f.IsAck() {
				if err := fr.WritePing(true, f.Data); err != nil {
					return err
				}
			}
			continue
		case *http2.MetaHeadersFrame:
			frames[id] = append(frames[id], "HEADERS"+map[bool]string{true: " END_STREAM"}[ended])
		case *http2.DataFrame:
			frames[id] = append(frames[id], fmt.Sprintf("DATA %d", len(f.Data()))+map[bool]string{true: " END_STREAM"}[ended])
			bodies[id] = append(bodies[id], f.Data()...)
		default:
			continue
		}
		if !ended {
			continue
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true,
			BlockFragment: headers(":status", "200", "content-type", "application/grpc")}); err != nil {
			return err
		}
		if err := fr.WriteData(id, false, bodies[id]); err != nil {
			return err
		}
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, EndHeaders: true, EndStream: true,
			BlockFragment: headers("grpc-status", "0")}); err != nil {
			return err
		}
		calls <- frames[id]
		delete(frames, id)
		delete(bodies, id)
	}
}

// TestGRPCUnaryWithoutEndOfStream: a unary call whose client sends its
// message but does not end its stream (the gRPC protocol has it end with
// the message) is answered with a gRPC error once Limits.ReadTimeout has
// passed (DEADLINE_EXCEEDED): the gateway waits for that end before
// forwarding.
func TestGRPCUnaryWithoutEndOfStream(t *testing.T) {
	node, _ := frameNode(t)
	cfg := testConfig(RouteConfig{Name: "m", Match: MatchConfig{Models: []string{"m"}}, Nodes: []NodeConfig{{GRPC: node}}})
	cfg.Limits.ReadTimeout = 300 * time.Millisecond
	gw := startGateway(t, cfg)
	msg := kserve.InferRequest{ModelName: "m", ID: "open"}.Marshal()
	pr, pw := io.Pipe()
	defer pw.Close()
	req, err := http.NewRequest("POST", "http://"+gw.addr+mInfer, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Te", "trailers")
	go func() {
		frame := append([]byte{0, 0, 0, 0, byte(len(msg))}, msg...)
		_, _ = pw.Write(frame) // and no end of stream until the test ends
	}()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: h2cOnly()}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	code := resp.Trailer.Get("Grpc-Status")
	if code == "" {
		code = resp.Header.Get("Grpc-Status")
	}
	if code == "" || code == "0" {
		t.Fatalf("a unary call without end of stream got grpc-status %q (HTTP %d), want an error", code, resp.StatusCode)
	}
	if msg, _ := url.PathUnescape(resp.Header.Get("Grpc-Message")); code != "4" || !strings.Contains(msg, "body read timeout") {
		t.Errorf("grpc-status %s (%q), want 4 DEADLINE_EXCEEDED for the request body", code, msg)
	}
}
