package resource_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
)

func TestRejections(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lns := listenAll(t, 1)
	in := startInstance(t, lns[0], baseConfig(nil))
	base := "http://" + in.addr
	good := `{"id":"n1","app":"llama","addresses":{"http":"127.0.0.1:8000"},"capacity":1,"state":"ready","load":{"utilisation":0.5},"seq":1}`

	post := func(token, body string) (int, map[string]string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/heartbeat", strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	httpCases := []struct {
		name, token, body string
		code              int
		reason, field     string
	}{
		{"bad token", "wrong", good, 401, "bad_token", ""},
		{"no token", "", good, 401, "bad_token", ""},
		{"malformed", testToken, `{"id":`, 400, "malformed", ""},
		{"wrong type", testToken, strings.Replace(good, `"utilisation":0.5`, `"utilisation":"0.5"`, 1), 400, "wrong_type", "load.utilisation"},
		{"absurd utilisation", testToken, strings.Replace(good, `0.5`, `7.3`, 1), 400, "invalid_value", "load.utilisation"},
		{"negative cards", testToken, strings.Replace(good, `"capacity":1`, `"capacity":1,"accelerator":{"count":-4}`, 1), 400, "invalid_value", "accelerator.count"},
		{"bad address", testToken, strings.Replace(good, `127.0.0.1:8000`, `nowhere`, 1), 400, "invalid_value", "addresses.http"},
		{"oversized", testToken, `{"id":"` + strings.Repeat("x", 20000) + `"}`, 413, "oversized", ""},
	}
	for _, tc := range httpCases {
		code, body := post(tc.token, tc.body)
		if code != tc.code || body["reason"] != tc.reason || body["field"] != tc.field {
			t.Errorf("%s: got %d %v, want %d reason %s field %q", tc.name, code, body, tc.code, tc.reason, tc.field)
		}
	}

	// Framed: a bad value gets a Reject naming the field; the connection
	// survives and a good beat is acknowledged.
	c, err := net.Dial("tcp", in.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	w := func(b []byte) {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	read := func() (byte, []byte) {
		typ, p, _, err := discovery.ReadFrame(br, 1<<16, nil)
		if err != nil {
			t.Fatal(err)
		}
		return typ, p
	}
	w(append([]byte(discovery.Magic2), discovery.AppendHelloFrame(nil, discovery.Hello{Role: discovery.RoleAgent, Token: testToken})...))
	if typ, _ := read(); typ != discovery.FrameWelcome {
		t.Fatalf("want welcome, got %d", typ)
	}
	hb := discovery.Heartbeat{ID: "f1", App: "llama", Addresses: map[string]string{"http": "127.0.0.1:1"}, State: discovery.StateReady, Load: discovery.Load{Utilisation: discovery.Known(7.3)}, Seq: 1}
	w(discovery.AppendHeartbeatFrame(nil, &hb, discovery.Version2))
	typ, p := read()
	if typ != discovery.FrameReject {
		t.Fatalf("want reject, got %d", typ)
	}
	rj, err := discovery.DecodeReject(p, discovery.Version2)
	if err != nil || rj.Field != "load.utilisation" || rj.NodeID != "f1" || rj.Reason != discovery.ReasonInvalid {
		t.Fatalf("reject %+v %v", rj, err)
	}
	hb.Load.Utilisation, hb.Seq = discovery.Known(0.3), 2
	w(discovery.AppendHeartbeatFrame(nil, &hb, discovery.Version2))
	for {
		typ, p := read()
		if typ == discovery.FrameAck {
			if seq, _ := discovery.DecodeUvarint(p, "seq"); seq == 2 {
				break
			}
		}
	}
	// An oversized frame closes the connection.
	var hdr [5]byte
	binary.BigEndian.PutUint32(hdr[:], 1<<30)
	hdr[4] = discovery.FrameHeartbeat
	w(hdr[:])
	for {
		typ, _, _, err := discovery.ReadFrame(br, 1<<16, nil)
		if err != nil {
			break
		}
		if typ != discovery.FrameReject {
			t.Fatalf("unexpected frame %d", typ)
		}
	}
	// A framed bad token is refused.
	c2, err := net.Dial("tcp", in.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_ = c2.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c2.Write(append([]byte(discovery.Magic1), discovery.AppendHelloFrame(nil, discovery.Hello{Role: discovery.RoleAgent, Token: "nope"})...))
	if typ, _, _, err := discovery.ReadFrame(bufio.NewReader(c2), 1<<16, nil); err != nil || typ != discovery.FrameReject {
		t.Fatalf("bad token: %d %v", typ, err)
	}

	r := in.srv.Rejections()
	want := map[discovery.Reason]uint64{
		discovery.ReasonBadToken: 3, discovery.ReasonMalformed: 1, discovery.ReasonWrongType: 1,
		discovery.ReasonInvalid: 4, discovery.ReasonOversized: 2,
	}
	for reason, n := range want {
		if got := r.Count(reason); got != n {
			t.Errorf("rejections[%s] = %d, want %d", reason, got, n)
		}
	}
	// Exposed on /metrics; nothing rejected was stored.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `switchyard_resource_rejections_total{reason="invalid_value"} 4`) {
		t.Errorf("metrics lack the rejection count:\n%s", metrics)
	}
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/apps/llama/list", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var l discovery.OnlineList
	_ = json.NewDecoder(resp.Body).Decode(&l)
	resp.Body.Close()
	for _, n := range l.Nodes {
		if n.ID == "n1" || (n.ID == "f1" && n.Load.Utilisation != discovery.Known(0.3)) {
			t.Fatalf("a rejected heartbeat was stored: %+v", n)
		}
	}
}
