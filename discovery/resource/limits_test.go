package resource_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
)

// TestLimits (issue 12, item 11): nodes per app, apps per instance and
// subscribers per app are bounded, and each refusal says which limit, on
// the framed protocol (a Reject) and over HTTP (429 with a JSON reason).
func TestLimits(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lns := listenAll(t, 1)
	cfg := baseConfig(nil)
	cfg.MaxNodesPerApp, cfg.MaxApps, cfg.MaxSubscribersPerApp = 2, 2, 1
	in := startInstance(t, lns[0], cfg)

	c, err := net.Dial("tcp", in.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	if _, err := discovery.Handshake(c, br, discovery.CurrentVersion, discovery.Hello{Role: discovery.RoleAgent, Token: testToken}); err != nil {
		t.Fatal(err)
	}
	send := func(app, id string) {
		hb := discovery.Heartbeat{ID: id, App: app, Addresses: map[string]string{"http": "127.0.0.1:1"}, State: discovery.StateReady, Incarnation: 1, Seq: 1}
		if _, err := c.Write(discovery.AppendHeartbeatFrame(nil, &hb, discovery.CurrentVersion)); err != nil {
			t.Fatal(err)
		}
	}
	nextReject := func() discovery.Reject {
		for {
			typ, p, _, err := discovery.ReadFrame(br, discovery.MaxAgentFrame, nil)
			if err != nil {
				t.Fatal(err)
			}
			if typ == discovery.FrameReject {
				r, err := discovery.DecodeReject(p, discovery.CurrentVersion)
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
		}
	}
	send("a", "n1")
	send("a", "n2")
	send("a", "n3") // one node too many
	if r := nextReject(); r.Reason != discovery.ReasonLimit || r.NodeID != "n3" || !strings.Contains(r.Problem, "limit") {
		t.Fatalf("third node: %+v", r)
	}
	send("b", "n1")
	send("c", "n1") // one app too many
	if r := nextReject(); r.Reason != discovery.ReasonLimit || r.Field != "app" || r.NodeID != "n1" {
		t.Fatalf("third app: %+v", r)
	}

	get := func(path string) (int, string) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+in.addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/v1/apps/a/delta?subscriber=gw1"); code != http.StatusOK {
		t.Fatalf("first subscriber: %d %s", code, body)
	}
	if code, body := get("/v1/apps/a/delta?subscriber=gw2"); code != http.StatusTooManyRequests || !strings.Contains(body, `"reason":"limit"`) || !strings.Contains(body, `"field":"subscriber"`) {
		t.Fatalf("second subscriber: %d %s", code, body)
	}
	if code, body := get("/v1/apps/zzz/delta"); code != http.StatusTooManyRequests || !strings.Contains(body, `"field":"app"`) {
		t.Fatalf("a reader creating one app too many: %d %s", code, body)
	}
	if n := in.srv.Rejections().Count(discovery.ReasonLimit); n != 4 {
		t.Fatalf("limit rejections %d, want 4", n)
	}
}
