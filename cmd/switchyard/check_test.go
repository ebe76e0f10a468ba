package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The version and commit stampedBinary links in.
const (
	stampVersion = "v9.8.7-stamp"
	stampCommit  = "0123456789abcdef0123456789abcdef01234567"
)

var stamped struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// stampedBinary builds switchyard once per test binary, with the
// version and commit set at link time as the Makefile does (TestMain
// removes it).
func stampedBinary(t *testing.T) string {
	t.Helper()
	stamped.once.Do(func() {
		stamped.dir, stamped.err = os.MkdirTemp("", "switchyard-bin-")
		if stamped.err != nil {
			return
		}
		stamped.bin = filepath.Join(stamped.dir, "switchyard")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", stamped.bin,
			"-ldflags", "-X main.version="+stampVersion+" -X main.commit="+stampCommit, ".")
		if out, err := cmd.CombinedOutput(); err != nil {
			stamped.err = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	if stamped.err != nil {
		t.Fatal(stamped.err)
	}
	return stamped.bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if stamped.dir != "" {
		_ = os.RemoveAll(stamped.dir)
	}
	os.Exit(code)
}

// TestGatewayCheck runs `switchyard gateway --check` (the built binary)
// on good and bad files: a bad one exits 1 with the file, the YAML line
// and the field, in words without Go's types and without a prefix said
// twice, and that includes what only loading finds (a TLS key pair, a
// token file, the API-key file, a shadow log's directory).
func TestGatewayCheck(t *testing.T) {
	bin := stampedBinary(t)
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing")
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte("0123456789abcdef0123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const route = "routes:\n  - name: r\n    match: {models: [a]}\n    nodes: ['127.0.0.1:1']\n"
	tests := []struct {
		name, yaml string
		code       int
		want       []string // each in the output (stdout for 0, stderr otherwise)
	}{
		{"one route", route, 0, []string{"configuration valid: 1 route\n"}},
		{"two routes", route + "  - name: s\n    match: {models: [b]}\n    nodes: ['127.0.0.1:2']\n", 0,
			[]string{"configuration valid: 2 routes\n"}},
		{"admin token read", "admin:\n  token_file: " + tokenFile + "\n" + route, 0, []string{"configuration valid: 1 route"}},
		{"bare duration", "limits:\n  read_timeout: 30\n" + route, 1,
			[]string{"line 2: limits.read_timeout: 30 is not a duration: give it a unit, e.g. 30s"}},
		{"misspelt field", "listen:\n  clinet: 127.0.0.1:0\n" + route, 1,
			[]string{`line 2: listen: unknown field "clinet" (known: `}},
		{"validation", route + "  - name: r\n    match: {models: [b]}\n    nodes: ['127.0.0.1:1']\n", 1,
			[]string{`line 5: routes[1].name "r": duplicate route name`}},
		{"missing TLS key pair", "listen:\n  client: 127.0.0.1:0\n  tls_cert: " + missing + ".crt\n  tls_key: " + missing + ".key\n" + route, 1,
			[]string{"line 3: tls: listen.tls_cert: open " + missing + ".crt: no such file or directory"}},
		{"missing admin token file", "admin:\n  token_file: " + missing + "\n" + route, 1,
			[]string{"line 2: admin.token_file: open " + missing + ": no such file or directory"}},
		{"missing discovery token file", "discovery:\n  servers: ['127.0.0.1:7100']\n  token_file: " + missing + "\n" +
			"routes:\n  - name: r\n    match: {models: [a]}\n    source: resource\n", 1,
			[]string{"line 3: discovery.token_file: open " + missing + ": no such file or directory"}},
		{"missing CA bundle of a route's nodes", route + "    tls: {ca_file: " + missing + ".pem}\n", 1,
			[]string{`line 5: route "r": tls.ca_file: open ` + missing + ".pem: no such file or directory"}},
		{"missing CA bundle of a route's health checks", route + "    health_check: {ca_file: " + missing + ".pem}\n", 1,
			[]string{`line 5: route "r": health_check.ca_file: open ` + missing + ".pem"}},
		{"missing API-key file", "auth:\n  api_keys_file: " + missing + "\n" + route, 1,
			[]string{"line 2: ", "auth.api_keys_file", missing}},
		{"missing shadow log directory", route + "  - name: s\n    match: {models: [b]}\n    nodes: ['127.0.0.1:2']\n" +
			"    shadow:\n      target: r\n      log: {path: " + missing + "/diff.jsonl}\n", 1,
			[]string{"line 10: routes[1].shadow.log.path", "its directory", "no such file or directory"}},
		{"bad shadow config", route + "  - name: s\n    match: {models: [b]}\n    nodes: ['127.0.0.1:2']\n" +
			"    shadow:\n      target: r\n      sample_rate: 200\n", 1,
			[]string{"routes[1].shadow: "}},
	}
	goWords := regexp.MustCompile(`\b(config|gateway|shadow|split|tenant|time)\.[A-Z]\w*|time\.Duration|!!(int|str|seq|map|bool|float)`)
	twice := regexp.MustCompile(`gateway: gateway:|config: .*config:|shadow: .*shadow:|tls: tls:`)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml")
			if err := os.WriteFile(path, []byte(tc.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			code, stdout, stderr := runBinary(t, bin, "gateway", "--check", "--config", path)
			out := stdout
			if tc.code != 0 {
				out = stderr
				if !strings.HasPrefix(out, "switchyard gateway: "+path+": ") {
					t.Errorf("stderr %q does not start with the command and the file", out)
				}
				if strings.Count(out, "\n") != 1 {
					t.Errorf("stderr %q: want one line", out)
				}
			}
			if code != tc.code {
				t.Errorf("exit %d, want %d; stdout %q stderr %q", code, tc.code, stdout, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output %q\nwant it to contain %q", out, w)
				}
			}
			if m := goWords.FindString(stdout + stderr); m != "" {
				t.Errorf("output %q shows Go's words: %q", stdout+stderr, m)
			}
			if m := twice.FindString(stdout + stderr); m != "" {
				t.Errorf("output %q says a prefix twice: %q", stdout+stderr, m)
			}
		})
	}
	t.Run("no such file", func(t *testing.T) {
		code, _, stderr := runBinary(t, bin, "gateway", "--check", "--config", missing+".yaml")
		if code != 1 || !strings.HasPrefix(stderr, "switchyard gateway: read config: open "+missing+".yaml: no such file") {
			t.Errorf("exit %d, stderr %q", code, stderr)
		}
	})
	t.Run("no config", func(t *testing.T) {
		code, stdout, stderr := runBinary(t, bin, "gateway", "--check")
		if code != 2 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "--config FILE") {
			t.Errorf("exit %d, stdout %q, stderr %q: want 2 and one line naming --config FILE", code, stdout, stderr)
		}
	})
}

// runBinary runs bin with args and returns its exit code and output.
func runBinary(t *testing.T, bin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("%v: %v", args, err)
	}
	return code, out.String(), errb.String()
}

// TestErrorsSayPrefixOnce runs commands of the built binary on bad input:
// each error line names its command once ("switchyard sim: fleet: ...",
// not "switchyard sim: sim: fleet: ..."), its file's line where it has
// one, and no Go type.
func TestErrorsSayPrefixOnce(t *testing.T) {
	bin := stampedBinary(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fleet := write("fleet.yaml", "nodes:\n  - {id: a, profile: tpu}\n")
	fleetField := write("fleet-field.yaml", "nodes:\n  - {id: a, profil: h100}\n")
	creds := write("creds.yaml", "agents:\n  - {name: a, tls_san: [x], apps: x}\n")
	capFile := write("cap.yaml", "cards:\n  - {name: X, coefficient: lots}\n")
	missing := filepath.Join(dir, "missing.yaml")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"sim", "--config", fleet}, `switchyard sim: fleet: nodes[0]: unknown profile "tpu" (known: 910b, a10, cpu, h100)`},
		{[]string{"sim", "--config", fleetField}, `switchyard sim: fleet: line 2: nodes[0]: unknown field "profil" (known: `},
		{[]string{"resource", "--listen", "127.0.0.1:0", "--credentials", creds}, `switchyard resource: credentials: line 2: agents[0].apps: want a list, e.g. [x], got "x"`},
		{[]string{"resource", "--listen", "127.0.0.1:0", "--credentials", missing}, "switchyard resource: credentials: open " + missing},
		{[]string{"agent", "probe", "--capacity-file", capFile}, `switchyard agent probe: capacity: invalid table: ` + capFile + `: line 2: cards[0].coefficient: want a number, got "lots"`},
		{[]string{"demo", "--duration", "1ms"}, "switchyard demo: duration 1ms: at least 10s"},
		{[]string{"gateway", "--config", missing}, "switchyard gateway: read config: open " + missing},
		{[]string{"agent", "drain", "--control", "127.0.0.1:1", "--timeout", "1s"}, `switchyard agent drain: Post "http://127.0.0.1:1/drain": `},
	} {
		t.Run(strings.Join(tc.args[:2], " "), func(t *testing.T) {
			code, _, stderr := runBinary(t, bin, tc.args...)
			if code == 0 {
				t.Fatalf("%v: exit 0", tc.args)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("%v: stderr %q\nwant %q", tc.args, stderr, tc.want)
			}
			for _, w := range []string{"gateway: gateway:", "sim: sim:", "resource: resource:", "demo: demo:", "agent: agent:", "drain: agent drain:", "capacity: capacity:", "credentials: credentials:"} {
				if strings.Contains(stderr, w) {
					t.Errorf("%v: stderr %q says %q", tc.args, stderr, w)
				}
			}
			if m := goTypeName.FindString(stderr); m != "" {
				t.Errorf("%v: stderr %q names a Go type: %q", tc.args, stderr, m)
			}
		})
	}
}
