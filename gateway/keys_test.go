package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/tenant"
)

// TestAPIKeys: with auth.api_keys_file, a request needs a key of the file
// (Authorization: Bearer or x-api-key); no key or an unknown one is 401
// invalid_api_key; the key never reaches the node, the tenant does;
// a model outside the tenant's allowlist does not exist for it (404, not
// in /v1/models); past requests_per_minute it is 429 rate_limit_exceeded
// with Retry-After; a changed file is picked up.
func TestAPIKeys(t *testing.T) {
	var nodeGot headerLog
	be := backend(t, "n", func(w http.ResponseWriter, r *http.Request) {
		nodeGot.add(r)
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, `{}`)
	})
	const keyA, keyB = "sk-test-team-a-0123456789abcdef", "sk-test-team-b-0123456789abcdef"
	sum := sha256.Sum256([]byte(keyB))
	dir := t.TempDir()
	file := filepath.Join(dir, "keys.yaml")
	write := func(extra string) {
		t.Helper()
		body := "keys:\n" +
			"  - {key: " + keyA + ", tenant: team-a, requests_per_minute: 4, models: [m]}\n" +
			"  - {key_sha256: " + hex.EncodeToString(sum[:]) + ", tenant: team-b}\n" + extra
		if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	cfg := testConfig(staticRoute("m", be.URL), staticRoute("other", be.URL))
	cfg.Auth = &tenant.Config{Path: file, Interval: 100 * time.Millisecond}
	gw := startGateway(t, cfg)
	call := func(path, model string, hdr ...string) (*http.Response, string) {
		t.Helper()
		resp, b := post(t, testClient(), gw.url(path), `{"model":"`+model+`"}`, hdr...)
		return resp, string(b)
	}
	code := func(b string) string { return decodeError(t, []byte(b)).Error.Code }

	if resp, b := call("/v1/completions", "m"); resp.StatusCode != 401 || code(b) != "invalid_api_key" {
		t.Errorf("no key: %d %s", resp.StatusCode, b)
	}
	if resp, b := call("/v1/completions", "m", "Authorization", "Bearer sk-nope-nope-nope-nope-nope"); resp.StatusCode != 401 || code(b) != "invalid_api_key" || strings.Contains(b, "sk-nope") {
		t.Errorf("unknown key: %d %s", resp.StatusCode, b)
	}
	if resp, b := call("/v1/completions", "m", "Authorization", "Bearer "+keyA); resp.StatusCode != 200 {
		t.Fatalf("team-a: %d %s", resp.StatusCode, b)
	}
	if resp, b := call("/v1/completions", "other", "X-Api-Key", keyB); resp.StatusCode != 200 {
		t.Fatalf("team-b by x-api-key: %d %s", resp.StatusCode, b)
	}
	seen := nodeGot.all()
	for i, h := range seen {
		if h.Get("Authorization") != "" || h.Get("X-Api-Key") != "" {
			t.Errorf("request %d reached the node with its key", i)
		}
	}
	if seen[0].Get("X-Switchyard-Tenant") != "team-a" || seen[1].Get("X-Switchyard-Tenant") != "team-b" {
		t.Errorf("tenants at the node: %q, %q", seen[0].Get("X-Switchyard-Tenant"), seen[1].Get("X-Switchyard-Tenant"))
	}
	// team-a may use m only: other does not exist for it.
	resp404, hidden := call("/v1/completions", "other", "Authorization", "Bearer "+keyA)
	if resp404.StatusCode != 404 || code(hidden) != "model_not_found" || strings.Contains(hidden, "other") && !strings.Contains(hidden, `model \"other\"`) {
		t.Errorf("model outside the allowlist: %d %s", resp404.StatusCode, hidden)
	}
	// ... the very answer a model nobody serves gets (its request id and
	// name aside), listing team-a's models.
	_, missing := call("/v1/completions", "nope", "Authorization", "Bearer "+keyA)
	reqID := regexp.MustCompile(`"request_id":"[^"]*"`)
	norm := func(b, model string) string { return reqID.ReplaceAllString(strings.ReplaceAll(b, model, "MODEL"), "") }
	if norm(hidden, "other") != norm(missing, "nope") || !strings.Contains(hidden, "available models: [m]") {
		t.Errorf("a model outside the allowlist answers\n%s\nunlike a missing model's\n%s", hidden, missing)
	}
	req, _ := http.NewRequest("GET", gw.url("/v1/models"), nil)
	req.Header.Set("Authorization", "Bearer "+keyA)
	resp, err := testClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"m"`) || strings.Contains(string(b), `"other"`) {
		t.Errorf("team-a's /v1/models: %s", b)
	}
	// Four requests a minute, one spent above: then the limit.
	limited := false
	for i := 0; i < 6 && !limited; i++ {
		resp, b := call("/v1/completions", "m", "Authorization", "Bearer "+keyA)
		switch {
		case resp.StatusCode == 429:
			limited = code(b) == "rate_limit_exceeded" && resp.Header.Get("Retry-After") != ""
			if !limited {
				t.Errorf("429 without the code or Retry-After: %s %v", b, resp.Header)
			}
		case resp.StatusCode != 200:
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, b)
		}
	}
	if !limited {
		t.Error("requests_per_minute 4 was never enforced")
	}
	// The admin API shows the tenants and their usage, never a key.
	var ts struct {
		Enabled bool `json:"enabled"`
		Tenants []struct {
			Name  string `json:"name"`
			Usage struct {
				Admitted int `json:"admitted"`
				Refused  int `json:"refused_requests_per_minute"`
			} `json:"usage"`
		} `json:"tenants"`
	}
	getAdmin(t, gw, "/admin/tenants", &ts)
	admitted := map[string]int{}
	refused := 0
	for _, x := range ts.Tenants {
		admitted[x.Name] = x.Usage.Admitted
		refused += x.Usage.Refused
	}
	if !ts.Enabled || admitted["team-a"] < 4 || admitted["team-b"] != 1 || refused == 0 {
		t.Errorf("/admin/tenants: %+v", ts)
	}
	if raw := adminBody(t, gw, "/admin/tenants"); strings.Contains(raw, keyA) || strings.Contains(raw, "sk-test") {
		t.Errorf("/admin/tenants shows a key: %s", raw)
	}
	// A new key in the file is picked up.
	const keyC = "sk-test-team-c-0123456789abcdef"
	write("  - {key: " + keyC + ", tenant: team-c}\n")
	waitFor(t, 5*time.Second, "the new key", func() bool {
		resp, _ := call("/v1/completions", "m", "Authorization", "Bearer "+keyC)
		return resp.StatusCode == 200
	})
}
