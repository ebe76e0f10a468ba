package admin

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/config"
	"github.com/switchyard-dev/switchyard/gateway/tenant"
)

const keysFile = `keys:
  - key: sk-team-a-0123456789abcdef
    tenant: team-a
    requests_per_minute: 2
    tokens_per_minute: 1000
    max_concurrent: 4
    models: [llama]
  - key: sk-batch-0123456789abcdef
    tenant: nightly
    priority: batch
`

// getTenants serves GET /admin/tenants through the admin handler.
func getTenants(t *testing.T, store func() *tenant.Store) (tenantsJSON, string) {
	t.Helper()
	h := Handler(Deps{
		Metrics: http.NotFoundHandler(), // not read here
		Guard:   func() *Guard { return NewGuard(&config.AdminConfig{}, "", "127.0.0.1:0") },
		Tenants: store,
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://127.0.0.1/admin/tenants", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /admin/tenants: %d %s", rec.Code, rec.Body)
	}
	var out tenantsJSON
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	return out, rec.Body.String()
}

// TestTenantsJSON: without keys the endpoint says they are off; with a
// key file it lists each tenant's limits and usage, and never a key.
func TestTenantsJSON(t *testing.T) {
	for name, store := range map[string]func() *tenant.Store{
		"no dependency": nil,
		"no store":      func() *tenant.Store { return nil },
	} {
		if out, _ := getTenants(t, store); out.Enabled || out.Tenants == nil || len(out.Tenants) != 0 {
			t.Errorf("%s: %+v", name, out)
		}
	}

	path := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(path, []byte(keysFile), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := tenant.Open(tenant.Config{Path: path, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	a, ok := st.Lookup([]byte("sk-team-a-0123456789abcdef"))
	if !ok {
		t.Fatal("team-a's key not found")
	}
	now := time.Now()
	for range 3 { // the third is over 2 requests per minute
		a.Admit(now)
	}
	a.Charge(now, 120)
	if !a.Acquire() {
		t.Fatal("Acquire refused")
	}
	defer a.Release()

	out, body := getTenants(t, func() *tenant.Store { return st })
	if strings.Contains(body, "sk-") || strings.Contains(body, "0123456789abcdef") {
		t.Fatalf("a key is shown: %s", body)
	}
	if !out.Enabled || out.Keys != 2 || out.Loaded == nil || out.ReloadError != "" || len(out.Tenants) != 2 {
		t.Fatalf("tenants: %s", body)
	}
	ta, nightly := out.Tenants[1], out.Tenants[0] // sorted by name
	if ta.Name != "team-a" || ta.Priority != "interactive" || ta.Limits.RequestsPerMinute != 2 || ta.Limits.TokensPerMinute != 1000 ||
		ta.Limits.MaxConcurrent != 4 || strings.Join(ta.Limits.Models, ",") != "llama" {
		t.Errorf("team-a limits: %+v", ta)
	}
	if u := ta.Usage; u.Admitted != 2 || u.RefusedRequests != 1 || u.Tokens != 120 || u.InFlight != 1 {
		t.Errorf("team-a usage: %+v", u)
	}
	if nightly.Name != "nightly" || nightly.Priority != "batch" || nightly.Limits.Models == nil || nightly.Usage.Admitted != 0 {
		t.Errorf("nightly: %+v", nightly)
	}
}
