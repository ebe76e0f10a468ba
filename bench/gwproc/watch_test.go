package gwproc

import (
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/internal/testlog"
)

// The startup lines of `switchyard gateway --listen 127.0.0.1:0 --admin
// 127.0.0.1:0` (text, the default) and of `--listen :0 --admin [::1]:0
// --log-format json`, as the binary wrote them, with the lines around
// them. cmd/switchyard's TestGatewayProcessAddresses runs the real binary
// through Start.
const (
	realText = `time=2026-12-07T17:07:42.403Z level=INFO msg="gateway: admin listening" addr=127.0.0.1:41233
time=2026-12-07T17:07:42.403Z level=INFO msg="gateway: listening" addr=127.0.0.1:39749 routes=1
time=2026-12-07T17:07:43.904Z level=WARN msg="gateway: node failing but kept: it is the last node that can take requests" route=m node=127.0.0.1:1 reason=health detail="health check failed 2 times in a row: connect: dial tcp 127.0.0.1:1: connect: connection refused (GET http://127.0.0.1:1/health)"
time=2026-12-07T17:07:45.474Z level=INFO msg="gateway: stopped"
`
	realJSON = `{"time":"2026-12-07T17:07:45.500443803Z","level":"INFO","msg":"gateway: admin listening","addr":"[::1]:37501"}
{"time":"2026-12-07T17:07:45.500514738Z","level":"INFO","msg":"gateway: listening","addr":"[::]:33567","routes":1}
{"time":"2026-12-07T17:07:47.001362072Z","level":"WARN","msg":"gateway: node failing but kept: it is the last node that can take requests","route":"m","node":"127.0.0.1:1","reason":"health","detail":"health check failed 2 times in a row"}
`
)

func TestWatcher(t *testing.T) {
	tests := []struct {
		name, log     string
		client, admin string // "" client: Found stays open
	}{
		{"text", realText, "127.0.0.1:39749", "127.0.0.1:41233"},
		{"json, the unspecified host dialled as loopback", realJSON, "[::1]:33567", "[::1]:37501"},
		{"no admin listener", `time=x level=INFO msg="gateway: listening" addr=127.0.0.1:8080 routes=2` + "\n", "127.0.0.1:8080", ""},
		{"other lines first", "panic-free noise\n=\n\"\nkey=\"unterminated\n{not json\n" +
			`level=INFO msg="gateway: admin listening" addr=0.0.0.0:9` + "\n" +
			`level=INFO addr=127.0.0.1:7 msg="gateway: listening"` + "\n", "127.0.0.1:7", "127.0.0.1:9"},
		{"a message that only starts alike", `msg="gateway: listening soon" addr=127.0.0.1:1` + "\n", "", ""},
		{"port 0 is no address", `msg="gateway: listening" addr=127.0.0.1:0` + "\n", "", ""},
		{"no address", `msg="gateway: listening" routes=1` + "\n", "", ""},
		{"unfinished line", `msg="gateway: listening" addr=127.0.0.1:5`, "", ""},
		{"an overlong line is skipped", `msg="gateway: listening" addr=127.0.0.1:5 x=` + strings.Repeat("a", maxLine) + "\n" +
			`msg="gateway: listening" addr=127.0.0.1:6` + "\n", "127.0.0.1:6", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Written whole, and a few bytes at a time: lines cut across
			// writes.
			for _, chunk := range []int{len(tc.log), 7} {
				var dst testlog.Buffer
				w := NewWatcher(&dst)
				for s := tc.log; s != ""; {
					n := min(chunk, len(s))
					if m, err := w.Write([]byte(s[:n])); m != n || err != nil {
						t.Fatalf("write: %d, %v", m, err)
					}
					s = s[n:]
				}
				if dst.String() != tc.log {
					t.Errorf("chunks of %d: passed on %d bytes of %d", chunk, len(dst.String()), len(tc.log))
				}
				found := false
				select {
				case <-w.Found():
					found = true
				default:
				}
				client, admin := w.Addrs()
				if found != (tc.client != "") || client != tc.client || admin != tc.admin {
					t.Errorf("chunks of %d: found %v, client %q, admin %q; want client %q, admin %q", chunk, found, client, admin, tc.client, tc.admin)
				}
			}
		})
	}
}

func TestTextAttr(t *testing.T) {
	s := `time=2026-12-07T17:07:42.403Z msg="a \"quoted\" = b" addr=[::1]:5 empty= last="x"`
	var got []string
	for s != "" {
		key, val, rest, ok := textAttr(s)
		if !ok {
			t.Fatalf("stopped at %q", s)
		}
		got = append(got, key+"|"+val)
		s = rest
	}
	want := []string{"time|2026-12-07T17:07:42.403Z", `msg|a "quoted" = b`, "addr|[::1]:5", "empty|", "last|x"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
