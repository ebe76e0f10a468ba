package gateway

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/shadow"
)

// shadowOverHangingNode is a config whose route "chat" mirrors every
// request to the route "candidate", a node that holds each request until
// its connection goes; the mirror's timeout and the candidate's are a
// minute, so only a cancellation ends the copy early. The difference log
// goes to logPath.
func shadowOverHangingNode(primary, candidate, logPath string) *Config {
	shc := shadow.DefaultConfig()
	shc.Target = "candidate"
	shc.Timeout = time.Minute
	shc.CloseTimeout = 2 * time.Second
	shc.Log.Path = logPath
	chat := staticRoute("chat", primary)
	chat.Shadow = &shc
	cfg := testConfig(chat, staticRoute("candidate", candidate))
	cfg.Routes[1].Timeouts.Total = time.Minute
	return cfg
}

// loggedReports reads the difference log at path as it is on disk now.
func loggedReports(t *testing.T, path string) []shadow.Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []shadow.Report
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var r shadow.Report
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// within waits for ch until d passes.
func within(t *testing.T, ch chan struct{}, d time.Duration, what string) {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ch:
	case <-timer.C:
		t.Fatalf("%s: not within %v", what, d)
	}
}

// TestShadowServeShutdownCancelsHangingTarget: when Serve ends, a shadow
// copy held by a hanging target is cancelled (the core's sender honours
// the Mirror's Close), so Serve returns well before the mirror's minute
// timeout, the target sees its request cancelled, the copy is counted as
// canceled, and the difference it makes is in the log file as soon as
// Serve has returned.
func TestShadowServeShutdownCancelsHangingTarget(t *testing.T) {
	candidate, arrived, cancelled := hangingNode(t)
	primary := backend(t, "p", nil)
	logPath := filepath.Join(t.TempDir(), "diff.jsonl")
	gw := startGateway(t, shadowOverHangingNode(primary.URL, candidate, logPath))
	m := gw.g.core.Routes().Route("chat").Mirror()

	resp, b := post(t, testClient(), gw.url("/v1/completions"), `{"model":"chat"}`, "X-Request-Id", "rid-serve")
	if resp.StatusCode != 200 {
		t.Fatalf("primary: %d %s", resp.StatusCode, b)
	}
	within(t, arrived, 5*time.Second, "the copy at the shadow target")

	gw.stop() // Serve's context ends; stop waits for Serve to return (at most 20 s)
	logged := loggedReports(t, logPath)
	if len(logged) != 1 || logged[0].RequestID != "rid-serve" || !strings.HasPrefix(logged[0].ShadowError, "canceled") {
		t.Errorf("log when Serve returned: %+v; want the cancelled copy of rid-serve", logged)
	}
	if st := m.Stats(); st.ErrorsCanceled != 1 || st.Offered != 1 || st.LogWritten != 1 {
		t.Errorf("mirror stats after Serve: %+v; want 1 offered, 1 canceled, 1 logged", st)
	}
	within(t, cancelled, 5*time.Second, "the target's request cancelled")
}

// TestShadowReloadClosesRemovedShadow: a Reload that removes a route's
// shadow closes its mirror before it returns: the copy held by a hanging
// target is cancelled and its difference is in the log file at once.
func TestShadowReloadClosesRemovedShadow(t *testing.T) {
	candidate, arrived, cancelled := hangingNode(t)
	primary := backend(t, "p", nil)
	logPath := filepath.Join(t.TempDir(), "diff.jsonl")
	gw := startGateway(t, shadowOverHangingNode(primary.URL, candidate, logPath))
	m := gw.g.core.Routes().Route("chat").Mirror()

	resp, b := post(t, testClient(), gw.url("/v1/completions"), `{"model":"chat"}`, "X-Request-Id", "rid-reload")
	if resp.StatusCode != 200 {
		t.Fatalf("primary: %d %s", resp.StatusCode, b)
	}
	within(t, arrived, 5*time.Second, "the copy at the shadow target")

	cfg := shadowOverHangingNode(primary.URL, candidate, logPath)
	cfg.Routes[0].Shadow = nil
	if err := gw.g.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	logged := loggedReports(t, logPath)
	if len(logged) != 1 || logged[0].RequestID != "rid-reload" || !strings.HasPrefix(logged[0].ShadowError, "canceled") {
		t.Errorf("log when Reload returned: %+v; want the cancelled copy of rid-reload", logged)
	}
	if st := m.Stats(); st.ErrorsCanceled != 1 || st.LogWritten != 1 {
		t.Errorf("old mirror's stats after Reload: %+v; want 1 canceled, 1 logged", st)
	}
	if gw.g.core.Routes().Route("chat").Mirror() != nil {
		t.Error("chat still has a mirror after the reload")
	}
	within(t, cancelled, 5*time.Second, "the target's request cancelled")

	// The gateway goes on without the shadow.
	if resp, b := post(t, testClient(), gw.url("/v1/completions"), `{"model":"chat"}`); resp.StatusCode != 200 {
		t.Fatalf("after the reload: %d %s", resp.StatusCode, b)
	}
	select {
	case <-arrived:
		t.Error("a request reached the removed shadow's target")
	default:
	}
}
