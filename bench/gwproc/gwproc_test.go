package gwproc

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// standIn makes the test binary, run as a child process, a stand-in
// gateway: the role named in this variable (see TestMain).
const standIn = "SWITCHYARD_GWPROC_TEST_ROLE"

func TestMain(m *testing.M) {
	if role := os.Getenv(standIn); role != "" {
		if err := runStandIn(role, os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runStandIn plays a gateway: "serve" binds --listen and --admin, logs
// the startup lines as the gateway does and answers /readyz until
// SIGTERM; "unready" answers /readyz 503; "noadmin" logs only a client
// line; "fail" writes 100 lines and exits 2; "silent" logs nothing.
// --need FILE must be readable first.
func runStandIn(role string, args []string) error {
	fs := flag.NewFlagSet("stand-in", flag.ContinueOnError)
	listen := fs.String("listen", "", "")
	admin := fs.String("admin", "", "")
	need := fs.String("need", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *need != "" {
		if _, err := os.ReadFile(*need); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	switch role {
	case "fail":
		for i := range 100 {
			fmt.Fprintf(os.Stderr, "line %d of a long complaint\n", i)
		}
		return errors.New("config: line 3: routes: bogus")
	case "silent":
		<-ctx.Done()
		return nil
	}
	cl, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if role != "noadmin" {
		al, err := net.Listen("tcp", *admin)
		if err != nil {
			return err
		}
		status := http.StatusOK
		if role == "unready" {
			status = http.StatusServiceUnavailable
		}
		go func() {
			_ = http.Serve(al, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(status)
			}))
		}()
		log.Info(AdminMsg, "addr", al.Addr().String())
	}
	log.Info(ClientMsg, "addr", cl.Addr().String(), "routes", 1)
	go func() {
		_ = http.Serve(cl, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = fmt.Fprint(w, "served")
		}))
	}()
	<-ctx.Done()
	log.Info("gateway: stopped")
	return nil
}

func standInConfig(role string) Config {
	return Config{
		Command: []string{os.Args[0], "--listen", AnyPort, "--admin", AnyPort},
		// The race detector's runtime sleeps 1 s before a process exits
		// unless told not to.
		Env: []string{standIn + "=" + role, "GORACE=atexit_sleep_ms=0"},
	}
}

// TestStartStop starts a stand-in on AnyPort, reads its addresses,
// reaches both, and stops its process group.
func TestStartStop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	t.Setenv("TMPDIR", t.TempDir())
	cfg := standInConfig("serve")
	// A relative program path is this process's, not the child's
	// directory's.
	wd := t.TempDir()
	if err := os.Symlink(os.Args[0], filepath.Join(wd, "stand-in")); err != nil {
		t.Fatal(err)
	}
	t.Chdir(wd)
	cfg.Command[0] = "./stand-in"
	cfg.Command = append(cfg.Command, "--need", "sub/token")
	cfg.Files = map[string]string{"sub/token": "secret\n"}
	p, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("%s: %v", cfg.Command[0], err)
	}
	defer p.Stop()
	for _, a := range []string{p.Client, p.Admin} {
		if host, port, err := net.SplitHostPort(a); err != nil || host != "127.0.0.1" || port == "0" {
			t.Fatalf("address %q", a)
		}
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.Client + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("client: %d", resp.StatusCode)
	}
	if tail := p.Tail(); !strings.Contains(tail, ClientMsg) {
		t.Errorf("log tail %q lacks the startup line", tail)
	}
	p.Stop()
	select {
	case <-p.Exited():
	default:
		t.Fatal("Stop returned with the process running")
	}
	if err := syscall.Kill(-p.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d after Stop: %v", p.Pid, err)
	}
	if _, err := os.Stat(p.Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("directory after Stop: %v", err)
	}
	p.Stop() // a second Stop does nothing
}

// TestStartFails: a process that exits early, never logs, logs no admin
// address, or never gets ready fails Start with the reason and its log's
// end, and is gone.
func TestStartFails(t *testing.T) {
	tests := []struct {
		role    string
		timeout time.Duration
		want    []string
	}{
		{"fail", time.Minute, []string{"exited before it logged its addresses: exit status 2",
			"line 99 of a long complaint\nconfig: line 3: routes: bogus", "log tail:\n…\n"}},
		{"silent", 300 * time.Millisecond, []string{"waiting for its listening log lines: no answer within 300ms"}},
		{"noadmin", time.Minute, []string{"no admin address", `msg="gateway: listening"`}},
		{"unready", 500 * time.Millisecond, []string{"waiting for /readyz: no answer within 500ms (last: readyz: status 503)"}},
	}
	for _, tc := range tests {
		t.Run(tc.role, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp)
			cfg := standInConfig(tc.role)
			cfg.Timeout = tc.timeout
			p, err := Start(ctx, cfg)
			if err == nil {
				p.Stop()
				t.Fatal("started")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nwant it to contain %q", err, w)
				}
			}
			if tc.role == "fail" && strings.Contains(err.Error(), "line 0 of") {
				t.Errorf("error quotes the whole log: %q", err)
			}
			if dirs, err := os.ReadDir(tmp); err != nil || len(dirs) != 0 {
				t.Errorf("left in the temporary directory: %v, %v", dirs, err)
			}
		})
	}
}

// TestStartHonoursContext: Start returns when ctx ends, with ctx's error.
func TestStartHonoursContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := Start(ctx, standInConfig("silent"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Start after its context ended: %v", err)
	}
	if _, err := Start(context.Background(), Config{}); err == nil {
		t.Error("no command accepted")
	}
	if _, err := Start(context.Background(), Config{Command: []string{"true"}, Files: map[string]string{"../x": ""}}); err == nil {
		t.Error("a file outside the directory accepted")
	}
}
