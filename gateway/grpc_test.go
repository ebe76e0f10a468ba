package gateway

import (
	"cmp"
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/switchyard-dev/switchyard/engines/kserve"
	"github.com/switchyard-dev/switchyard/gateway/shadow"
	"github.com/switchyard-dev/switchyard/gateway/split"
)

const (
	mInfer       = "/inference.GRPCInferenceService/ModelInfer"
	mStreamInfer = "/inference.GRPCInferenceService/ModelStreamInfer"
	mReady       = "/inference.GRPCInferenceService/ModelReady"
	mHang        = "/inference.GRPCInferenceService/ModelHang"
)

// grpcBackend is a raw-bytes gRPC server: ModelInfer echoes with a trailer,
// ModelStreamInfer sends three messages 50 ms apart (or, for the model
// "echo", answers its headers and then echoes each further message),
// ModelReady fails with NotFound.
func grpcBackend(t testing.TB, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(kserve.Codec{}), grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		method, _ := grpc.MethodFromServerStream(ss)
		var in []byte
		if err := ss.RecvMsg(&in); err != nil {
			return err
		}
		_ = ss.SetHeader(metadata.Pairs("x-node", name, "x-request-id", "from-the-node"))
		switch method {
		case mInfer:
			ss.SetTrailer(metadata.Pairs("x-trailer", "t-"+name))
			return ss.SendMsg(append([]byte(name+":"), in...))
		case mStreamInfer:
			if string(in) == string(kserve.InferRequest{ModelName: "echo"}.Marshal()) {
				// Bidirectional: the headers first, then every further
				// client message echoed until the client's end.
				if err := ss.SendHeader(nil); err != nil {
					return err
				}
				for {
					var m []byte
					if err := ss.RecvMsg(&m); err == io.EOF {
						return nil
					} else if err != nil {
						return err
					}
					if err := ss.SendMsg(m); err != nil {
						return err
					}
				}
			}
			for i := 0; i < 3; i++ {
				if i > 0 {
					time.Sleep(50 * time.Millisecond)
				}
				if err := ss.SendMsg([]byte{byte('0' + i)}); err != nil {
					return err
				}
			}
			ss.SetTrailer(metadata.Pairs("x-trailer", "stream-"+name))
			return nil
		case mReady:
			return status.Error(codes.NotFound, "model not loaded here")
		case mHang:
			<-ss.Context().Done()
			return ss.Context().Err()
		}
		return status.Error(codes.Unimplemented, method)
	}))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func grpcClient(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(kserve.Codec{})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// TestGRPCSharesPortWithHTTP1: gRPC unary and streaming calls, routed by
// model_name, go through the same port as HTTP/1.1 traffic, with headers,
// trailers and status codes intact.
func TestGRPCSharesPortWithHTTP1(t *testing.T) {
	g1 := grpcBackend(t, "g1")
	g2 := grpcBackend(t, "g2")
	h := backend(t, "h", nil)
	cfg := testConfig(
		RouteConfig{Name: "m1", Match: MatchConfig{Models: []string{"m1"}}, Nodes: []NodeConfig{{HTTP: hostOf(h), GRPC: g1}}},
		RouteConfig{Name: "m2", Match: MatchConfig{Models: []string{"m2"}}, Nodes: []NodeConfig{{GRPC: g2}}},
	)
	gw := startGateway(t, cfg)
	cc := grpcClient(t, gw.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	stop := make(chan struct{})
	var httpOK, httpN int
	var mu sync.Mutex
	wg.Add(1)
	go func() { // HTTP/1.1 traffic on the same port meanwhile
		defer wg.Done()
		c := testClient()
		for {
			select {
			case <-stop:
				return
			default:
			}
			req, _ := http.NewRequest("POST", gw.url("/v1/completions"), strings.NewReader(`{"model":"m1"}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			mu.Lock()
			httpN++
			if err == nil && resp.StatusCode == 200 && resp.Header.Get("X-Node") == "h" && resp.ProtoMajor == 1 {
				httpOK++
			}
			mu.Unlock()
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()

	for _, tc := range []struct{ model, node string }{{"m1", "g1"}, {"m2", "g2"}, {"m1", "g1"}} {
		req := kserve.InferRequest{ModelName: tc.model, ID: "r1"}.Marshal()
		var out []byte
		var hdr, trl metadata.MD
		if err := cc.Invoke(ctx, mInfer, req, &out, grpc.Header(&hdr), grpc.Trailer(&trl)); err != nil {
			t.Fatalf("unary %s: %v", tc.model, err)
		}
		if !strings.HasPrefix(string(out), tc.node+":") || string(out[len(tc.node)+1:]) != string(req) {
			t.Fatalf("unary %s answered %q", tc.model, out)
		}
		if got := hdr.Get("x-node"); len(got) != 1 || got[0] != tc.node {
			t.Errorf("header x-node %v", got)
		}
		if got := trl.Get("x-trailer"); len(got) != 1 || got[0] != "t-"+tc.node {
			t.Errorf("trailer x-trailer %v", got)
		}
		// The gateway's request ID replaces the node's: one, not two.
		if id := hdr.Get("x-request-id"); len(id) != 1 || id[0] == "from-the-node" {
			t.Errorf("x-request-id %q in the answer, want the gateway's alone", id)
		}
	}

	// Server streaming: three messages, spaced, then the trailer.
	st, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, mStreamInfer)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendMsg(kserve.InferRequest{ModelName: "m2"}.Marshal()); err != nil {
		t.Fatal(err)
	}
	_ = st.CloseSend()
	var got []string
	var at []time.Time
	for {
		var m []byte
		err := st.RecvMsg(&m)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("stream recv: %v", err)
		}
		got = append(got, string(m))
		at = append(at, time.Now())
	}
	if strings.Join(got, ",") != "0,1,2" {
		t.Fatalf("stream got %v", got)
	}
	if d := at[2].Sub(at[0]); d < 50*time.Millisecond {
		t.Errorf("stream messages arrived together (%v apart): buffered", d)
	}
	if tr := st.Trailer().Get("x-trailer"); len(tr) != 1 || tr[0] != "stream-g2" {
		t.Errorf("stream trailer %v", st.Trailer())
	}

	// A node's status code passes through.
	var out []byte
	err = cc.Invoke(ctx, mReady, kserve.MarshalModelReadyRequest("m1", ""), &out)
	if s, _ := status.FromError(err); s.Code() != codes.NotFound || s.Message() != "model not loaded here" {
		t.Errorf("ModelReady: %v, want NotFound from the node", err)
	}
	// The gateway's own errors are gRPC statuses.
	err = cc.Invoke(ctx, mInfer, kserve.InferRequest{ModelName: "nope"}.Marshal(), &out)
	if s, _ := status.FromError(err); s.Code() != codes.NotFound || !strings.Contains(s.Message(), "nope") {
		t.Errorf("unknown model: %v, want NotFound naming it", err)
	}
	close(stop)
	wg.Wait()
	if httpN == 0 || httpOK != httpN {
		t.Errorf("HTTP/1.1 alongside gRPC: %d of %d ok", httpOK, httpN)
	}
}

// TestGRPCRetryOnDeadNode: a unary call whose first node refuses the
// connection is retried on another node.
func TestGRPCRetryOnDeadNode(t *testing.T) {
	live := grpcBackend(t, "live")
	dead, _ := net.Listen("tcp", "127.0.0.1:0")
	deadAddr := dead.Addr().String()
	dead.Close()
	cfg := testConfig(RouteConfig{Name: "m", Match: MatchConfig{Models: []string{"m"}},
		Nodes: []NodeConfig{{ID: "dead", GRPC: deadAddr}, {ID: "live", GRPC: live}}})
	gw := startGateway(t, cfg)
	cc := grpcClient(t, gw.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := 0; i < 10; i++ {
		var out []byte
		if err := cc.Invoke(ctx, mInfer, kserve.InferRequest{ModelName: "m"}.Marshal(), &out); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if !strings.HasPrefix(string(out), "live:") {
			t.Fatalf("call %d answered by %q", i, out)
		}
	}
}

// TestHTTP2PlainRequest: a non-gRPC request over h2c is routed like
// HTTP/1.1 and streamed.
func TestHTTP2PlainRequest(t *testing.T) {
	be := backend(t, "b", nil)
	gw := startGateway(t, testConfig(staticRoute("m", be.URL)))
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Protocols: h2cOnly()}}
	req, _ := http.NewRequest("POST", gw.url("/v1/chat/completions"), strings.NewReader(`{"model":"m"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != 200 || resp.Header.Get("X-Node") != "b" {
		t.Fatalf("h2c: proto %d status %d node %q body %s", resp.ProtoMajor, resp.StatusCode, resp.Header.Get("X-Node"), b)
	}
	resp, err = c.Get(gw.url("/v1/models"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"id":"m"`) {
		t.Fatalf("/v1/models over h2c: %s", b)
	}
}

func h2cOnly() *http.Protocols {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &p
}

// TestGRPCFirstByteTimeout: a node that never answers gets
// DEADLINE_EXCEEDED after the route's first-byte timeout: a short one
// armed as the call starts, a longer one armed by the watchdog once the
// call has lasted (forward.armSoon).
func TestGRPCFirstByteTimeout(t *testing.T) {
	for _, limit := range []time.Duration{200 * time.Millisecond, 900 * time.Millisecond} {
		t.Run(limit.String(), func(t *testing.T) {
			g := grpcBackend(t, "g")
			cfg := testConfig(RouteConfig{Name: "m", Match: MatchConfig{Models: []string{"m"}}, Nodes: []NodeConfig{{GRPC: g}}, AllowPaths: []string{mHang}})
			cfg.Routes[0].Timeouts.FirstByte = limit
			gw := startGateway(t, cfg)
			cc := grpcClient(t, gw.addr)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			begin := time.Now()
			var out []byte
			err := cc.Invoke(ctx, mHang, kserve.InferRequest{ModelName: "m"}.Marshal(), &out)
			if s, _ := status.FromError(err); s.Code() != codes.DeadlineExceeded {
				t.Fatalf("hang: %v, want DeadlineExceeded", err)
			}
			if d := time.Since(begin); d < limit || d > 5*time.Second {
				t.Fatalf("took %v, want the limit %v (and not 5 s)", d, limit)
			}
		})
	}
}

// TestGRPCBidiAfterHeaders: a bidirectional call whose node answers its
// headers before the client sends more: the client's later messages
// still reach the node (the gateway keeps relaying the client's stream
// after the answer began), and each echo comes back.
func TestGRPCBidiAfterHeaders(t *testing.T) {
	g := grpcBackend(t, "g")
	gw := startGateway(t, testConfig(RouteConfig{Name: "echo", Match: MatchConfig{Models: []string{"echo"}}, Nodes: []NodeConfig{{GRPC: g}}}))
	cc := grpcClient(t, gw.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, mStreamInfer)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendMsg(kserve.InferRequest{ModelName: "echo"}.Marshal()); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Header(); err != nil { // the node answered
		t.Fatal(err)
	}
	for _, msg := range []string{"a", "b", "c"} {
		if err := st.SendMsg([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		var m []byte
		if err := st.RecvMsg(&m); err != nil || string(m) != msg {
			t.Fatalf("echo of %q: %q, %v", msg, m, err)
		}
	}
	_ = st.CloseSend()
	var m []byte
	if err := st.RecvMsg(&m); err != io.EOF {
		t.Fatalf("end of call: %v", err)
	}
}

// TestGRPCGracefulShutdown: a streaming call in flight when the gateway
// is told to stop runs to completion.
func TestGRPCGracefulShutdown(t *testing.T) {
	g := grpcBackend(t, "g")
	gw := startGateway(t, testConfig(RouteConfig{Name: "m", Match: MatchConfig{Models: []string{"m"}}, Nodes: []NodeConfig{{GRPC: g}}}))
	cc := grpcClient(t, gw.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true}, mStreamInfer)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SendMsg(kserve.InferRequest{ModelName: "m"}.Marshal()); err != nil {
		t.Fatal(err)
	}
	_ = st.CloseSend()
	var first []byte
	if err := st.RecvMsg(&first); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() { gw.stop(); close(stopped) }()
	got := []string{string(first)}
	for {
		var m []byte
		err := st.RecvMsg(&m)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("stream cut by shutdown after %v: %v", got, err)
		}
		got = append(got, string(m))
	}
	if strings.Join(got, ",") != "0,1,2" {
		t.Fatalf("got %v", got)
	}
	<-stopped
}

// TestGRPCSplitStickyModelInfer: a 90/10 split over gRPC ModelInfer,
// sticky by the x-user metadata (the same key rules as HTTP): the shares
// land on the weights, a user always gets the same variant, and the
// variant is named in the response headers.
func TestGRPCSplitStickyModelInfer(t *testing.T) {
	ga := grpcBackend(t, "a")
	gb := grpcBackend(t, "b")
	sc := split.DefaultConfig()
	sc.Variants = split.Variants{{Name: "control", Weight: 90, Target: "model-a"}, {Name: "candidate", Weight: 10, Target: "model-b"}}
	sc.Key = split.KeyConfig{Header: "X-User"}
	cfg := testConfig(
		RouteConfig{Name: "chat", Match: MatchConfig{Models: []string{"chat"}}, Nodes: []NodeConfig{{GRPC: ga}}, Split: &sc},
		RouteConfig{Name: "model-a", Match: MatchConfig{Models: []string{"model-a"}}, Nodes: []NodeConfig{{GRPC: ga}}},
		RouteConfig{Name: "model-b", Match: MatchConfig{Models: []string{"model-b"}}, Nodes: []NodeConfig{{GRPC: gb}}},
	)
	gw := startGateway(t, cfg)
	cc := grpcClient(t, gw.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	call := func(user string) (node, variant string) {
		t.Helper()
		req := kserve.InferRequest{ModelName: "chat", ID: user}.Marshal()
		var out []byte
		var hdr metadata.MD
		mctx := metadata.AppendToOutgoingContext(ctx, "x-user", user)
		if err := cc.Invoke(mctx, mInfer, req, &out, grpc.Header(&hdr)); err != nil {
			t.Fatalf("user %s: %v", user, err)
		}
		node, _, _ = strings.Cut(string(out), ":")
		if v := hdr.Get(strings.ToLower(split.DefaultVariantHeader)); len(v) == 1 {
			variant = v[0]
		}
		return node, variant
	}
	const users = 600
	counts := map[string]int{}
	first := map[string]string{}
	for i := 0; i < users; i++ {
		u := "user-" + strconv.Itoa(i)
		node, variant := call(u)
		want := map[string]string{"control": "a", "candidate": "b"}[variant]
		if want == "" || node != want {
			t.Fatalf("%s: variant %q served by node %q", u, variant, node)
		}
		counts[variant]++
		first[u] = variant
	}
	for i := 0; i < 50; i++ { // sticky: the same users again
		u := "user-" + strconv.Itoa(i)
		if _, v := call(u); v != first[u] {
			t.Fatalf("%s moved from %s to %s", u, first[u], v)
		}
	}
	share := float64(counts["candidate"]) / users
	t.Logf("candidate share %.3f of %d users (%v)", share, users, counts)
	if share < 0.06 || share > 0.14 {
		t.Fatalf("candidate share %.3f, want about 0.10", share)
	}
}

// recordingGRPC is a gRPC node that records what ModelInfer calls it got
// (the payload and whether the shadow marker was set) and echoes them.
func recordingGRPC(t testing.TB, name string) (addr string, got func() [][2]string) {
	t.Helper()
	var mu sync.Mutex
	var calls [][2]string
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(kserve.Codec{}), grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		var in []byte
		if err := ss.RecvMsg(&in); err != nil {
			return err
		}
		md, _ := metadata.FromIncomingContext(ss.Context())
		marker := strings.Join(md.Get(strings.ToLower(shadow.DefaultMarkerHeader)), ",")
		mu.Lock()
		calls = append(calls, [2]string{string(in), marker})
		mu.Unlock()
		return ss.SendMsg(append([]byte(name+":"), in...))
	}))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String(), func() [][2]string {
		mu.Lock()
		defer mu.Unlock()
		return append([][2]string(nil), calls...)
	}
}

// TestGRPCShadowModelInfer: a shadowed gRPC call reaches its primary and,
// with the marker, the shadow target with the same message; the mirror
// compares the two answers (status and latency: gRPC bodies are not JSON)
// and counts no difference.
func TestGRPCShadowModelInfer(t *testing.T) {
	pa, primaryGot := recordingGRPC(t, "primary")
	sa, shadowGot := recordingGRPC(t, "shadow")
	shc := shadow.DefaultConfig()
	shc.Target = "candidate"
	cfg := testConfig(
		RouteConfig{Name: "chat", Match: MatchConfig{Models: []string{"chat"}}, Nodes: []NodeConfig{{GRPC: pa}}, Shadow: &shc},
		RouteConfig{Name: "candidate", Match: MatchConfig{Models: []string{"candidate"}}, Nodes: []NodeConfig{{GRPC: sa}}},
	)
	gw := startGateway(t, cfg)
	cc := grpcClient(t, gw.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := kserve.InferRequest{ModelName: "chat", ID: "r-42"}.Marshal()
	var out []byte
	if err := cc.Invoke(ctx, mInfer, req, &out); err != nil {
		t.Fatal(err)
	}
	if string(out) != "primary:"+string(req) {
		t.Fatalf("primary answered %q", out)
	}
	m := gw.g.core.Routes().Route("chat").Mirror()
	waitFor(t, 5*time.Second, "the comparison", func() bool { return m.Stats().Compared == 1 })
	st := m.Stats()
	if st.Offered != 1 || st.Mirrored != 1 || st.StatusMismatch != 0 || st.Errors() != 0 || st.Dropped() != 0 {
		t.Fatalf("mirror stats %+v", st)
	}
	p, s := primaryGot(), shadowGot()
	if len(p) != 1 || p[0][0] != string(req) || p[0][1] != "" {
		t.Fatalf("primary got %q", p)
	}
	if len(s) != 1 || s[0][0] != string(req) || s[0][1] != "1" {
		t.Fatalf("shadow got %q, want the same message with the marker", s)
	}
}

// TestGRPCControlMethodsRefused (issue 12, item 1): Triton's control and
// repository RPCs through a whole gateway never reach the node. A call
// its route matches (by a header, or by the model in field 1 of the
// Model* methods) gets the allowlist's refusal, Unimplemented "path not
// allowed"; a repository call routed by model alone, as Triton's client
// sends it (the model in field 2), matches no route (NotFound). A route
// whose allow_paths names the method forwards the same call, so it is the
// allowlist that refuses. Method names and fields are Triton's
// (triton-inference-server/common protobuf/grpc_service.proto
// @501aa7536daf4526479d01aa4a8df73b581eecd7: RepositoryModelLoadRequest
// is repository_name = 1, model_name = 2; ModelConfigRequest and
// ModelStatisticsRequest are name = 1, version = 2).
func TestGRPCControlMethodsRefused(t *testing.T) {
	const svc = "/inference.GRPCInferenceService/"
	var mu sync.Mutex
	var reached []string
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.ForceServerCodecV2(kserve.Codec{}), grpc.UnknownServiceHandler(func(_ any, ss grpc.ServerStream) error {
		method, _ := grpc.MethodFromServerStream(ss)
		mu.Lock()
		reached = append(reached, method)
		mu.Unlock()
		var in []byte
		if err := ss.RecvMsg(&in); err != nil {
			return err
		}
		return ss.SendMsg([]byte{}) // an empty response message: done
	}))
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	node := []NodeConfig{{GRPC: ln.Addr().String()}}
	cfg := testConfig(
		RouteConfig{Name: "m", Match: MatchConfig{Models: []string{"m"}}, Nodes: node},
		RouteConfig{Name: "triton", Match: MatchConfig{Headers: map[string]string{"X-Pool": "triton"}}, Nodes: node},
		RouteConfig{Name: "ops", Match: MatchConfig{Headers: map[string]string{"X-Pool": "ops"}}, Nodes: node,
			AllowPaths: []string{svc + "RepositoryModelLoad"}},
	)
	gw := startGateway(t, cfg)
	cc := grpcClient(t, gw.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// str is one protobuf string field.
	str := func(field byte, s string) []byte { return append([]byte{field<<3 | 2, byte(len(s))}, s...) }
	call := func(method, pool string, msg []byte) error {
		c := ctx
		if pool != "" {
			c = metadata.AppendToOutgoingContext(ctx, "x-pool", pool)
		}
		var out []byte
		return cc.Invoke(c, svc+method, msg, &out)
	}
	notAllowed := func(s *status.Status) bool {
		return s.Code() == codes.Unimplemented && strings.Contains(s.Message(), "not allowed")
	}
	for _, tc := range []struct {
		method, pool string
		msg          []byte
		want         func(*status.Status) bool
	}{
		{"RepositoryModelLoad", "", str(2, "m"), func(s *status.Status) bool {
			return s.Code() == codes.NotFound && strings.Contains(s.Message(), "no route")
		}},
		{"ModelConfig", "", str(1, "m"), notAllowed},
		{"ModelStatistics", "", str(1, "m"), notAllowed},
		{"RepositoryModelLoad", "triton", str(2, "m"), notAllowed},
		{"RepositoryModelUnload", "triton", str(2, "m"), notAllowed},
		{"RepositoryIndex", "triton", nil, notAllowed},
		{"SystemSharedMemoryRegister", "triton", str(1, "region"), notAllowed},
		{"CudaSharedMemoryRegister", "triton", str(1, "region"), notAllowed},
		{"TraceSetting", "triton", nil, notAllowed},
		{"LogSettings", "triton", nil, notAllowed},
	} {
		err := call(tc.method, tc.pool, tc.msg)
		if s, _ := status.FromError(err); !tc.want(s) {
			t.Errorf("%s (route by %q): %v", tc.method, cmp.Or(tc.pool, "model"), err)
		}
	}
	mu.Lock()
	if len(reached) != 0 {
		t.Errorf("refused calls reached the node: %v", reached)
	}
	mu.Unlock()
	if err := call("RepositoryModelLoad", "ops", str(2, "m")); err != nil {
		t.Fatalf("RepositoryModelLoad on the route that allows it: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reached) != 1 || reached[0] != svc+"RepositoryModelLoad" {
		t.Errorf("the allowed call reached the node as %v", reached)
	}
}
