package gateway

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/switchyard-dev/switchyard/engines/kserve"
	"github.com/switchyard-dev/switchyard/gateway/shadow"
)

// streamCall is what a recording gRPC node got in one call.
type streamCall struct {
	method string
	msgs   [][]byte
	marker string
}

// recordingStreamGRPC is a gRPC node that reads every message of a call
// until the client's end, records them with the method and the shadow
// marker, and answers one message naming itself and the count.
func recordingStreamGRPC(t *testing.T, name string) (addr string, got func() []streamCall) {
	t.Helper()
	var mu sync.Mutex
	var calls []streamCall
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(kserve.Codec{}), grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		method, _ := grpc.MethodFromServerStream(ss)
		md, _ := metadata.FromIncomingContext(ss.Context())
		c := streamCall{method: method, marker: strings.Join(md.Get(strings.ToLower(shadow.DefaultMarkerHeader)), ",")}
		for {
			var m []byte
			if err := ss.RecvMsg(&m); err == io.EOF {
				break
			} else if err != nil {
				return err
			}
			c.msgs = append(c.msgs, m)
		}
		mu.Lock()
		calls = append(calls, c)
		mu.Unlock()
		return ss.SendMsg([]byte(name + ":" + itoa(len(c.msgs))))
	}))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), func() []streamCall {
		mu.Lock()
		defer mu.Unlock()
		return append([]streamCall(nil), calls...)
	}
}

// TestGRPCShadowClientStream: a client-streaming gRPC call
// (ModelStreamInfer: the model in the first message, then more messages,
// then the client's end) is mirrored to the shadow target with every
// message and the marker when its body fits shadow.max_body_bytes, and is
// not mirrored — counted as dropped, body_too_large — when it does not;
// the primary gets the whole call either way.
func TestGRPCShadowClientStream(t *testing.T) {
	pa, primaryGot := recordingStreamGRPC(t, "primary")
	sa, shadowGot := recordingStreamGRPC(t, "shadow")
	fits := shadow.DefaultConfig()
	fits.Target = "candidate"
	small := fits
	small.MaxBodyBytes = 256
	cfg := testConfig(
		RouteConfig{Name: "chat", Match: MatchConfig{Models: []string{"chat"}}, Nodes: []NodeConfig{{GRPC: pa}}, Shadow: &fits},
		RouteConfig{Name: "chat-small", Match: MatchConfig{Models: []string{"chat-small"}}, Nodes: []NodeConfig{{GRPC: pa}}, Shadow: &small},
		RouteConfig{Name: "candidate", Match: MatchConfig{Models: []string{"candidate"}}, Nodes: []NodeConfig{{GRPC: sa}}},
	)
	gw := startGateway(t, cfg)
	cc := grpcClient(t, gw.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	call := func(model string, more ...[]byte) [][]byte {
		t.Helper()
		st, err := cc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true}, mStreamInfer)
		if err != nil {
			t.Fatal(err)
		}
		msgs := append([][]byte{kserve.InferRequest{ModelName: model, ID: "r-" + model}.Marshal()}, more...)
		for _, m := range msgs {
			if err := st.SendMsg(m); err != nil {
				t.Fatal(err)
			}
		}
		if err := st.CloseSend(); err != nil {
			t.Fatal(err)
		}
		var out []byte
		if err := st.RecvMsg(&out); err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		if want := "primary:" + itoa(len(msgs)); string(out) != want {
			t.Fatalf("%s: answered %q, want %q", model, out, want)
		}
		if err := st.RecvMsg(&out); err != io.EOF {
			t.Fatalf("%s: end of call: %v", model, err)
		}
		return msgs
	}
	same := func(a, b [][]byte) bool {
		if len(a) != len(b) {
			return false
		}
		for i := range a {
			if !bytes.Equal(a[i], b[i]) {
				return false
			}
		}
		return true
	}

	// Fits: mirrored whole.
	sent := call("chat", []byte("second"), []byte("third"))
	m := gw.g.core.Routes().Route("chat").Mirror()
	waitFor(t, 5*time.Second, "the comparison", func() bool { return m.Stats().Compared == 1 })
	if st := m.Stats(); st.Offered != 1 || st.Mirrored != 1 || st.StatusMismatch != 0 || st.Errors() != 0 || st.Dropped() != 0 {
		t.Fatalf("chat's mirror stats %+v", st)
	}
	s := shadowGot()
	if len(s) != 1 || s[0].method != mStreamInfer || s[0].marker != "1" || !same(s[0].msgs, sent) {
		t.Fatalf("shadow got %+v, want the call's %d messages with the marker", s, len(sent))
	}

	// Too large: the primary gets it, the shadow does not.
	big := bytes.Repeat([]byte("x"), 100)
	sent = call("chat-small", big, big, big)
	ms := gw.g.core.Routes().Route("chat-small").Mirror()
	waitFor(t, 5*time.Second, "the copy dropped", func() bool { return ms.Stats().DroppedBodyTooLarge == 1 })
	if st := ms.Stats(); st.Offered != 1 || st.Mirrored != 0 || st.Errors() != 0 || st.Dropped() != 1 {
		t.Fatalf("chat-small's mirror stats %+v", st)
	}
	p := primaryGot()
	if len(p) != 2 || !same(p[1].msgs, sent) || p[1].marker != "" {
		t.Fatalf("primary got %+v, want the whole call", p)
	}
	if s := shadowGot(); len(s) != 1 {
		t.Fatalf("the shadow got %d calls, want only the first (the second's body is over max_body_bytes)", len(s))
	}
}
