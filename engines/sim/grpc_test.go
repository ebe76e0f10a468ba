package sim

import (
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/switchyard-dev/switchyard/engines/kserve"
)

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(kserve.Codec{})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

func TestGRPC(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	n := start(t, Config{ID: "g1", Model: "m", GRPCListen: "127.0.0.1:0", Override: fast})
	cc := dial(t, n.GRPCAddr())

	call := func(method string, req []byte) ([]byte, metadata.MD, error) {
		var out []byte
		var hdr metadata.MD
		err := cc.Invoke(ctx, method, req, &out, grpc.Header(&hdr))
		return out, hdr, err
	}
	for _, m := range []string{kserve.ServerLive, kserve.ServerReady} {
		out, hdr, err := call(m, []byte{})
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if ok, err := kserve.ParseBool(out); err != nil || !ok {
			t.Errorf("%s = %v, %v", m, ok, err)
		}
		if got := hdr.Get("x-sim-node"); len(got) != 1 || got[0] != "g1" {
			t.Errorf("%s header %v", m, got)
		}
	}
	out, _, err := call(kserve.ModelReady, kserve.MarshalModelReadyRequest("m", ""))
	if ok, _ := kserve.ParseBool(out); err != nil || !ok {
		t.Errorf("ModelReady(m) = %v %v", ok, err)
	}
	out, _, err = call(kserve.ModelReady, kserve.MarshalModelReadyRequest("x", ""))
	if ok, _ := kserve.ParseBool(out); err != nil || ok {
		t.Errorf("ModelReady(x) = %v %v", ok, err)
	}

	three := int64(3)
	req := kserve.InferRequest{ModelName: "m", ID: "r7", Parameters: map[string]kserve.Param{"max_tokens": {Int64: &three}},
		Inputs: []kserve.Tensor{{Name: "text_input", Datatype: "BYTES", Shape: []int64{1}, BytesContents: [][]byte{[]byte("hello world")}}}}
	out, _, err = call(kserve.ModelInfer, req.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := kserve.ParseInferResponse(out)
	if err != nil || resp.ID != "r7" || resp.ModelName != "m" || len(resp.Outputs) != 1 || string(resp.Outputs[0].BytesContents[0]) != "Hello from the" {
		t.Errorf("infer = %+v, %v", resp, err)
	}
	bad := req
	bad.ModelName = "nope"
	if _, _, err := call(kserve.ModelInfer, bad.Marshal()); status.Code(err) != codes.NotFound {
		t.Errorf("unknown model: %v", err)
	}
	if _, _, err := call(kserve.ModelInfer, []byte{0xff, 0xff}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("garbage: %v", err)
	}
	n.Fail(ModeError)
	if _, _, err := call(kserve.ModelInfer, req.Marshal()); status.Code(err) != codes.Internal {
		t.Errorf("5xx mode: %v", err)
	}
	n.Fail(ModeHealthy)

	// ModelStreamInfer: one plain request, then a token-streaming one.
	sd := &grpc.StreamDesc{StreamName: "ModelStreamInfer", ServerStreams: true, ClientStreams: true}
	st, err := cc.NewStream(ctx, sd, kserve.ModelStreamInfer)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendMsg(req.Marshal()); err != nil {
		t.Fatal(err)
	}
	var b []byte
	if err := st.RecvMsg(&b); err != nil {
		t.Fatal(err)
	}
	msg, r, err := kserve.ParseStreamResponse(b)
	if err != nil || msg != "" || r == nil || string(r.Outputs[0].BytesContents[0]) != "Hello from the" {
		t.Fatalf("stream response %q %+v %v", msg, r, err)
	}
	yes := true
	sreq := req
	sreq.Parameters = map[string]kserve.Param{"max_tokens": {Int64: &three}, "stream": {Bool: &yes}}
	if err := st.SendMsg(sreq.Marshal()); err != nil {
		t.Fatal(err)
	}
	var toks []string
	for {
		if err := st.RecvMsg(&b); err != nil {
			t.Fatal(err)
		}
		_, r, err := kserve.ParseStreamResponse(b)
		if err != nil || r == nil {
			t.Fatalf("stream: %+v %v", r, err)
		}
		if p, ok := r.Parameters["triton_final_response"]; ok && p.Bool != nil && *p.Bool {
			break
		}
		toks = append(toks, string(r.Outputs[0].BytesContents[0]))
	}
	if len(toks) != 3 || toks[0] != "Hello" {
		t.Errorf("tokens %q", toks)
	}
	if err := st.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := st.RecvMsg(&b); err == nil {
		t.Error("stream not ended after CloseSend")
	}
	if got := n.Stats().Served; got != 3 {
		t.Errorf("served %d", got)
	}

	// Drain: ServerReady false, ModelInfer Unavailable.
	n.Drain()
	out, _, _ = call(kserve.ServerReady, nil)
	if ok, _ := kserve.ParseBool(out); ok {
		t.Error("ready while draining")
	}
	if _, _, err := call(kserve.ModelInfer, req.Marshal()); status.Code(err) != codes.Unavailable {
		t.Errorf("draining infer: %v", err)
	}
}
