package resource_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
)

// postBeat posts one JSON heartbeat and returns the status and body.
func postBeat(t *testing.T, ctx context.Context, addr, token string, hb discovery.Heartbeat) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(hb)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/v1/heartbeat", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestForgedIncarnationAndClockStepBack (issue 12, item 10) on a real
// instance: a forged offline beat with incarnation 2^64−1 is refused with a
// reason and removes nothing; an agent whose previous run left a tombstone
// from a clock that ran ahead (its clock has since stepped back) is told
// the incarnation to use and is listed again by itself, without waiting
// for the tombstone to expire.
func TestForgedIncarnationAndClockStepBack(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	lns := listenAll(t, 1)
	servers := addrs(lns)
	in := startInstance(t, lns[0], baseConfig(nil))
	w := startWatcher(t, servers, "llama", nil)

	victim := startAgent(t, agentConfig(servers, "llama", "victim", 9500))
	if _, err := w.waitFor(ctx, func(l *discovery.OnlineList) bool { return eligible(l, "victim") }); err != nil {
		t.Fatal(err)
	}
	forged := discovery.Heartbeat{ID: "victim", App: "llama", Addresses: map[string]string{"http": "127.0.0.1:9500"},
		State: discovery.StateOffline, Incarnation: math.MaxUint64, Seq: 1}
	code, body := postBeat(t, ctx, in.addr, testToken, forged)
	if code != http.StatusBadRequest || body["reason"] != "invalid_value" || body["field"] != "incarnation" || body["incarnation"] == nil {
		t.Fatalf("forged incarnation: %d %v", code, body)
	}
	if !strings.Contains(body["error"].(string), "ahead of this Resource instance's clock") {
		t.Fatalf("the refusal does not say why: %v", body["error"])
	}
	if in.srv.Rejections().Count(discovery.ReasonInvalid) != 1 {
		t.Fatal("the refusal was not counted")
	}
	// An accepted offline beat commits at once (no window), so the list
	// read right after the refusal shows whether the node was removed.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+in.addr+"/v1/apps/llama/list", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var l discovery.OnlineList
	_ = json.NewDecoder(resp.Body).Decode(&l)
	resp.Body.Close()
	if !eligible(&l, "victim") {
		t.Fatal("a refused forged beat removed the node")
	}
	victim.stop()

	// A previous run of "stepper" ran with its clock 40 s ahead and went
	// offline: its tombstone carries that incarnation.
	ahead := uint64(time.Now().Add(40 * time.Second).UnixNano())
	prev := discovery.Heartbeat{ID: "stepper", App: "llama", Addresses: map[string]string{"http": "127.0.0.1:9501"},
		State: discovery.StateReady, Incarnation: ahead, Seq: 1}
	if code, body := postBeat(t, ctx, in.addr, testToken, prev); code != http.StatusNoContent {
		t.Fatalf("beat within the skew: %d %v", code, body)
	}
	prev.State, prev.Seq = discovery.StateOffline, 2
	if code, body := postBeat(t, ctx, in.addr, testToken, prev); code != http.StatusNoContent {
		t.Fatalf("offline: %d %v", code, body)
	}
	// The clock stepped back; the agent restarts with incarnation = now.
	start := time.Now()
	stepper := startAgent(t, agentConfig(servers, "llama", "stepper", 9501))
	if _, err := w.waitFor(ctx, func(l *discovery.OnlineList) bool { return eligible(l, "stepper") }); err != nil {
		t.Fatal(err)
	}
	t.Logf("agent behind its tombstone listed after %v", time.Since(start))
	if time.Since(start) > 10*time.Second {
		t.Fatalf("recovery took %v; it must not wait for the tombstone (30 s) or longer", time.Since(start))
	}
	if !strings.Contains(stepper.a.LastReject(), "stale") || in.srv.Rejections().Count(discovery.ReasonStale) == 0 {
		t.Fatalf("the agent was not told why: last reject %q", stepper.a.LastReject())
	}
}
