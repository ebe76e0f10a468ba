package h2client_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// mInfer is KServe's unary inference method.
const mInfer = "/inference.GRPCInferenceService/ModelInfer"

// rawCodec passes gRPC messages through as bytes (engines/kserve's Codec,
// which internal/ may not import). Its name is "proto" so that grpc-go
// accepts application/grpc calls with it.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.([]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	*p = data.Materialize()
	return nil
}

// inferRequest is a KServe ModelInferRequest with a model name and an
// id (fields 1 and 3, both strings), encoded by hand.
func inferRequest(model, id string) []byte {
	b := append([]byte{1<<3 | 2, byte(len(model))}, model...)
	return append(append(b, 3<<3|2, byte(len(id))), id...)
}

// grpcMessage is msg in gRPC's length-prefixed framing, uncompressed.
func grpcMessage(msg []byte) []byte {
	b := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(b[1:], uint32(len(msg)))
	return append(b, msg...)
}

// startGRPC serves a grpc-go server on loopback: every method answers
// its request message prefixed with "echo:", with a header and a trailer,
// except the model "missing", answered with the status NotFound and
// nothing else (a trailers-only answer).
func startGRPC(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(rawCodec{}), grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		var in []byte
		if err := ss.RecvMsg(&in); err != nil {
			return err
		}
		if bytes.Equal(in, inferRequest("missing", "r-2")) {
			return status.Error(codes.NotFound, "no model named missing")
		}
		md, _ := metadata.FromIncomingContext(ss.Context())
		_ = ss.SetHeader(metadata.Pairs("x-node", "grpc-go", "x-seen-te", fmt.Sprint(md.Get("te"))))
		ss.SetTrailer(metadata.Pairs("x-trailer", "t"))
		return ss.SendMsg(append([]byte("echo:"), in...))
	}))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

// grpcRequest is a unary gRPC call of mInfer carrying msg, its body of
// known length or streamed (ContentLength -1, the gateway's way).
func grpcRequest(t *testing.T, addr string, msg []byte, streamed bool) *http.Request {
	req := newRequest(t, testContext(t), "POST", "http://"+addr+mInfer, bytes.NewReader(grpcMessage(msg)))
	req.Header["content-type"] = []string{"application/grpc"}
	req.Header["te"] = []string{"trailers"}
	req.Header["grpc-timeout"] = []string{"10S"}
	if streamed {
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(grpcMessage(msg))), -1
	}
	return req
}

// TestGRPCUnary: a unary call to grpc-go; the answer's message is in the
// body and grpc-status 0 in resp.Trailer once the body reads io.EOF.
func TestGRPCUnary(t *testing.T) {
	addr := startGRPC(t)
	tr, d := newTransport(t, addr, nil)
	for _, streamed := range []bool{false, true} {
		t.Run(fmt.Sprintf("streamed=%v", streamed), func(t *testing.T) {
			msg := inferRequest("m", "r-1")
			resp, body := roundTrip(t, tr, grpcRequest(t, addr, msg, streamed))
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/grpc" {
				t.Errorf("answer %d %q, want 200 application/grpc; header %v", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header)
			}
			if got := resp.Header.Get("X-Node"); got != "grpc-go" {
				t.Errorf("answer header X-Node = %q, want grpc-go", got)
			}
			if want := grpcMessage(append([]byte("echo:"), msg...)); !bytes.Equal(body, want) {
				t.Errorf("answer body %q, want %q", body, want)
			}
			if got := resp.Trailer.Get("Grpc-Status"); got != "0" {
				t.Errorf("trailer Grpc-Status = %q, want 0 (Trailer %v, Header %v)", got, resp.Trailer, resp.Header)
			}
			if got := resp.Trailer.Get("X-Trailer"); got != "t" {
				t.Errorf("trailer X-Trailer = %q, want t", got)
			}
			if resp.Header.Get("Grpc-Status") != "" {
				t.Errorf("Grpc-Status in the header of a normal answer: %v", resp.Header)
			}
		})
	}
	if n := d.count(); n != 1 {
		t.Errorf("%d connections dialled, want 1", n)
	}
}

// TestGRPCTrailersOnly: grpc-go answers an error status before any
// message with one HEADERS frame ending the stream (trailers-only). The
// contract puts its fields in resp.Header and gives an empty body; that
// is what is asserted here (net/http's client does the same). Whether
// resp.Trailer also holds them is logged, not required.
func TestGRPCTrailersOnly(t *testing.T) {
	addr := startGRPC(t)
	tr, _ := newTransport(t, addr, nil)
	resp, body := roundTrip(t, tr, grpcRequest(t, addr, inferRequest("missing", "r-2"), true))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d, want 200", resp.StatusCode)
	}
	if len(body) != 0 {
		t.Errorf("body %q, want none", body)
	}
	if got := resp.Header.Get("Grpc-Status"); got != fmt.Sprint(int(codes.NotFound)) {
		t.Errorf("Header Grpc-Status = %q, want %d (Header %v, Trailer %v)", got, codes.NotFound, resp.Header, resp.Trailer)
	}
	if got := resp.Header.Get("Grpc-Message"); got != "no model named missing" {
		t.Errorf("Header Grpc-Message = %q, want %q", got, "no model named missing")
	}
	t.Logf("trailers-only answer: Header %v, Trailer %v", resp.Header, resp.Trailer)
}
