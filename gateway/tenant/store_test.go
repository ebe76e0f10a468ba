package tenant

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/internal/testlog"
)

func keyFile(tenant, key string, rpm int) string {
	return "keys:\n  - key: " + key + "\n    tenant: " + tenant + "\n    requests_per_minute: " + itoa(rpm) + "\n"
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// replace writes content to path through a rename, as editors and the
// kubelet do: a new inode.
func replace(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func newStore(t *testing.T, content string, onReload func(error)) (*Store, string, *testlog.Buffer) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	var log testlog.Buffer
	s, err := Open(Config{Path: path, Interval: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(&log, nil)), OnReload: onReload})
	if err != nil {
		t.Fatal(err)
	}
	return s, path, &log
}

func TestStoreReload(t *testing.T) {
	s, path, log := newStore(t, keyFile("a", secret, 10), nil)
	a, ok := s.Lookup([]byte(secret))
	if !ok || a.Name() != "a" {
		t.Fatal("the key of the first file does not work")
	}
	if changed, err := s.Reload(); changed || err != nil {
		t.Errorf("reload of an unchanged file: %v %v", changed, err)
	}

	// A new key for a (a rotation) and new limits.
	replace(t, path, keyFile("a", "sk-rotated-0123456789abc", 20))
	if changed, err := s.Reload(); !changed || err != nil {
		t.Fatalf("reload: %v %v", changed, err)
	}
	if _, ok := s.Lookup([]byte(secret)); ok {
		t.Error("the old key still works")
	}
	if a2, ok := s.Lookup([]byte("sk-rotated-0123456789abc")); !ok || a2 != a || a2.Limits().RequestsPerMinute != 20 {
		t.Error("the new key does not reach the same tenant with the new limits")
	}

	// A bad file: the previous keys stay, the reason is logged once.
	replace(t, path, keyFile("a", secret, 10)+"    priority: urgent\n")
	for range 3 {
		if changed, err := s.Reload(); changed || err == nil || !strings.Contains(err.Error(), "keys[0].priority") {
			t.Fatalf("reload of a bad file: %v %v", changed, err)
		}
		// The same bad content again: an error each time, logged once.
		replace(t, path, keyFile("a", secret, 10)+"    priority: urgent\n")
	}
	if _, ok := s.Lookup([]byte("sk-rotated-0123456789abc")); !ok {
		t.Error("a bad file took the previous keys away")
	}
	if st := s.Status(); st.Err == nil || st.Keys != 1 || st.Tenants != 1 {
		t.Errorf("status %+v", st)
	}
	if n := strings.Count(log.String(), "reload failed"); n != 1 {
		t.Errorf("the failure was logged %d times:\n%s", n, log)
	}

	// Touched, not changed: no reload.
	replace(t, path, keyFile("a", "sk-rotated-0123456789abc", 20))
	if changed, err := s.Reload(); !changed || err != nil {
		t.Fatalf("reload of the fixed file: %v %v", changed, err)
	}
	now := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, now, now); err != nil {
		t.Fatal(err)
	}
	if changed, err := s.Reload(); changed || err != nil {
		t.Errorf("reload of a touched file: %v %v", changed, err)
	}

	// A removed file: the keys stay.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reload(); err == nil {
		t.Error("no error for a removed file")
	}
	if _, ok := s.Lookup([]byte("sk-rotated-0123456789abc")); !ok {
		t.Error("a removed file took the keys away")
	}

	out := log.String()
	for _, k := range []string{secret, "sk-rotated"} {
		if strings.Contains(out, k) {
			t.Errorf("the log shows a key:\n%s", out)
		}
	}
	for _, want := range []string{"api keys: loaded", "api keys: the file is good again", "level=WARN"} {
		if !strings.Contains(out, want) {
			t.Errorf("the log lacks %q:\n%s", want, out)
		}
	}
}

// TestStoreRun: the watcher goroutine takes a changed file and stops with
// its context.
func TestStoreRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reloads := make(chan error, 4)
	s, path, _ := newStore(t, keyFile("a", secret, 10), func(err error) { reloads <- err })
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(runCtx) }()

	replace(t, path, keyFile("b", secret, 10))
	select {
	case err := <-reloads:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		t.Fatal("no reload")
	}
	if b, ok := s.Lookup([]byte(secret)); !ok || b.Name() != "b" {
		t.Error("the key did not move to tenant b")
	}

	replace(t, path, "keys: [")
	select {
	case err := <-reloads:
		if err == nil || strings.Contains(err.Error(), secret) {
			t.Fatalf("reload of a broken file: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("no reload")
	}

	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Run did not return")
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("keys:\n  - key: "+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no path", Config{}, "auth.api_keys_file: required"},
		{"interval too short", Config{Path: bad, Interval: time.Millisecond}, "auth.reload_interval: 1ms: at least 100ms"},
		{"missing file", Config{Path: filepath.Join(dir, "none.yaml")}, "no such file"},
		{"bad file", Config{Path: bad}, bad + ": line 2: keys[0]: missing tenant"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), secret) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := LoadFile(bad); err == nil || !strings.Contains(err.Error(), "tenant: "+bad+": line 2") {
		t.Errorf("LoadFile: %v", err)
	}
}
