package compare

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
)

// contender is one way of putting a proxy (or nothing) in front of the
// backends.
type contender struct {
	name string
	// pkg is the Debian package providing bin ("" for ours).
	pkgs []string
	bin  string
	// h2 and grpc say whether the contender takes part in the HTTP/2
	// (h2c client side) and gRPC sections; onePort that it serves every
	// protocol on its one listener (else h2c and gRPC come to a second
	// listener, confData.ListenH2).
	h2, grpc, onePort bool
	// command returns the process to run (nil for direct) listening on
	// c.Listen (and c.ListenH2) and forwarding to c.Backends (HTTP/1.1)
	// and c.GRPCBackends; c.Dir is its private temp dir.
	command func(env *runEnv, c confData) (*exec.Cmd, error)
}

// runEnv is what contenders need from the harness.
type runEnv struct {
	self     string // the switchyard binary
	base     string // the baseline switchyard binary (Config.BaselineBin)
	proxyCPU int
	taskset  string
}

func contenders() []contender {
	return []contender{
		{name: "direct", h2: true, grpc: true},
		{name: "switchyard", h2: true, grpc: true, onePort: true, command: switchyardCmd},
		{name: "minproxy", command: minproxyCmd},
		{name: "epollproxy", command: epollproxyCmd},
		{name: "nginx", pkgs: []string{"nginx-light", "nginx"}, bin: "nginx", h2: true, grpc: true, command: nginxCmd},
		{name: "haproxy", pkgs: []string{"haproxy"}, bin: "haproxy", h2: true, grpc: true, command: haproxyCmd},
		{name: "caddy", pkgs: []string{"caddy"}, bin: "caddy", command: caddyCmd},
	}
}

// Names returns the contender names in run order.
func Names() []string {
	var out []string
	for _, c := range contenders() {
		out = append(out, c.name)
	}
	return out
}

// pinned returns a command pinned to the proxy core with GOMAXPROCS=1.
func (e *runEnv) pinned(dir, bin string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if e.taskset != "" {
		cmd = exec.Command(e.taskset, append([]string{"-c", fmt.Sprint(e.proxyCPU), bin}, args...)...)
	} else {
		cmd = exec.Command(bin, args...)
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	return cmd
}

func switchyardCmd(e *runEnv, c confData) (*exec.Cmd, error) {
	urls := make([]string, len(c.Backends))
	for i, b := range c.Backends {
		urls[i] = "http://" + b
	}
	args := []string{"gateway", "--listen", c.Listen, "--route", "bench=" + strings.Join(urls, ",")}
	if len(c.GRPCBackends) > 0 {
		g := make([]string, len(c.GRPCBackends))
		for i, b := range c.GRPCBackends {
			g[i] = "grpc://" + b
		}
		args = append(args, "--route", GRPCModel+"="+strings.Join(g, ","))
	}
	if c.Admin != "" {
		args = append(args, "--admin", c.Admin, "--pprof", "--admin-token-file", c.AdminTokenFile)
	}
	return e.pinned(c.Dir, e.self, args...), nil
}

// baseName is the contender of Config.BaselineBin.
const baseName = "switchyard-base"

func switchyardBaseCmd(e *runEnv, c confData) (*exec.Cmd, error) {
	if e.base == "" {
		return nil, fmt.Errorf("compare: no baseline binary given")
	}
	cmd, _ := switchyardCmd(e, c)
	if e.taskset != "" {
		cmd.Args[3] = e.base // taskset -c N BIN ...
	} else {
		cmd.Path, cmd.Args[0] = e.base, e.base
	}
	return cmd, nil
}

func minproxyCmd(e *runEnv, c confData) (*exec.Cmd, error) {
	return e.pinned(c.Dir, e.self, "bench", "minproxy", "--listen", c.Listen, "--upstream", strings.Join(c.Backends, ",")), nil
}

func epollproxyCmd(e *runEnv, c confData) (*exec.Cmd, error) {
	return e.pinned(c.Dir, e.self, "bench", "epollproxy", "--listen", c.Listen, "--upstream", strings.Join(c.Backends, ",")), nil
}

func render(dir, name, tmpl string, data any) (string, error) {
	t, err := template.New(name).Parse(tmpl)
	if err != nil {
		return "", fmt.Errorf("compare: %s template: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, data); err != nil {
		return "", fmt.Errorf("compare: %s template: %w", name, err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("compare: %w", err)
	}
	return p, nil
}

// confData is what a contender's configuration is made of.
type confData struct {
	Dir    string
	Listen string // HTTP/1.1
	// ListenH2 is the h2c (prior knowledge) listener for the HTTP/2 and
	// gRPC sections; "" when they do not run.
	ListenH2 string
	Backends []string // HTTP/1.1 backends
	// GRPCBackends are the gRPC (h2c) backends; empty when the gRPC
	// section does not run.
	GRPCBackends []string
	// Admin is Switchyard's admin listener, only when profiling;
	// AdminTokenFile then holds the admin token that pprof needs.
	Admin, AdminTokenFile string
}

// NginxConf is nginx's configuration: one worker, upstream keep-alive,
// HTTP/1.1 to the backends, no access log. The HTTP/2 section comes to a
// second listener with h2c prior knowledge (nginx 1.22: `listen ...
// http2` without ssl; `http2 on` is 1.25.1+) and is proxied over the same
// HTTP/1.1 upstreams (nginx has no h2c upstream for proxy_pass); gRPC on
// that listener goes to grpc_pass, which speaks h2c upstream.
const NginxConf = `worker_processes 1;
daemon off;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path {{.Dir}}/body;
    proxy_temp_path {{.Dir}}/proxy;
    fastcgi_temp_path {{.Dir}}/fastcgi;
    uwsgi_temp_path {{.Dir}}/uwsgi;
    scgi_temp_path {{.Dir}}/scgi;
    upstream backends {
{{- range .Backends}}
        server {{.}};
{{- end}}
        keepalive 256;
    }
{{- if .GRPCBackends}}
    upstream grpc_backends {
{{- range .GRPCBackends}}
        server {{.}};
{{- end}}
        keepalive 256;
    }
{{- end}}
    server {
        listen {{.Listen}};
{{- if .ListenH2}}
        listen {{.ListenH2}} http2;
{{- end}}
        keepalive_requests 1000000;
        location / {
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
{{- if .GRPCBackends}}
        location /inference.GRPCInferenceService/ {
            grpc_pass grpc://grpc_backends;
        }
{{- end}}
    }
}
`

func nginxCmd(e *runEnv, c confData) (*exec.Cmd, error) {
	dir := c.Dir
	conf, err := render(dir, "nginx.conf", NginxConf, c)
	if err != nil {
		return nil, err
	}
	bin, err := lookBin("nginx")
	if err != nil {
		return nil, err
	}
	return e.pinned(dir, bin, "-p", dir+"/", "-c", conf, "-e", dir+"/error.log"), nil
}

// HAProxyConf is HAProxy's configuration: one thread, connection reuse to
// the backends, round robin. The HTTP/2 section comes to a second
// frontend with h2c prior knowledge (`proto h2`) and goes to the same
// HTTP/1.1 backends; gRPC goes to h2c servers (`proto h2`).
const HAProxyConf = `global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    http-reuse always
frontend fe
    bind {{.Listen}}
    default_backend be
{{- if .ListenH2}}
frontend fe_h2
    bind {{.ListenH2}} proto h2
{{- if .GRPCBackends}}
    use_backend be_grpc if { path_beg /inference.GRPCInferenceService/ }
{{- end}}
    default_backend be
{{- end}}
backend be
    balance roundrobin
{{- range $i, $b := .Backends}}
    server s{{$i}} {{$b}}
{{- end}}
{{- if .GRPCBackends}}
backend be_grpc
    balance roundrobin
{{- range $i, $b := .GRPCBackends}}
    server g{{$i}} {{$b}} proto h2
{{- end}}
{{- end}}
`

func haproxyCmd(e *runEnv, c confData) (*exec.Cmd, error) {
	dir := c.Dir
	conf, err := render(dir, "haproxy.cfg", HAProxyConf, c)
	if err != nil {
		return nil, err
	}
	bin, err := lookBin("haproxy")
	if err != nil {
		return nil, err
	}
	return e.pinned(dir, bin, "-f", conf, "-db"), nil
}

// CaddyConf is Caddy's configuration: no admin endpoint, no automatic
// HTTPS, reverse_proxy to the backends (round robin).
const CaddyConf = `{
    admin off
    auto_https off
    storage file_system {{.Dir}}/data
}
http://{{.Listen}} {
    reverse_proxy {{range .Backends}}{{.}} {{end}}{
        lb_policy round_robin
    }
}
`

func caddyCmd(e *runEnv, c confData) (*exec.Cmd, error) {
	dir := c.Dir
	conf, err := render(dir, "Caddyfile", CaddyConf, c)
	if err != nil {
		return nil, err
	}
	bin, err := lookBin("caddy")
	if err != nil {
		return nil, err
	}
	return e.pinned(dir, bin, "run", "--config", conf, "--adapter", "caddyfile"), nil
}

// lookBin finds a binary on PATH or in the sbin directories.
func lookBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, d := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin", "/usr/bin"} {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("compare: %s: not installed", name)
}

// installer installs missing Debian packages, running apt-get update
// once.
type installer struct {
	allowed bool
	updated bool
	log     func(string, ...any)
}

// ensure returns nil when bin is installed, after trying to install the
// first package of pkgs that installs if it was missing.
func (in *installer) ensure(ctx context.Context, bin string, pkgs []string) error {
	if _, err := lookBin(bin); err == nil {
		return nil
	}
	if !in.allowed {
		return fmt.Errorf("%s is not installed (install disabled)", bin)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("%s is not installed and apt-get needs root", bin)
	}
	if !in.updated {
		in.log("apt-get update")
		if out, err := exec.CommandContext(ctx, "apt-get", "update").CombinedOutput(); err != nil {
			in.log("apt-get update failed: %v: %s", err, tail(out))
		}
		in.updated = true
	}
	var last string
	for _, p := range pkgs {
		in.log("apt-get install -y %s", p)
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "--no-install-recommends", p)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err == nil {
			last = ""
			break
		}
		last = fmt.Sprintf("apt-get install %s: %v: %s", p, err, tail(out))
	}
	if _, err := lookBin(bin); err != nil {
		if last == "" {
			last = "installed but " + bin + " not found"
		}
		return errors.New(last)
	}
	return nil
}

// ensureInstalled installs the missing packages of the contenders. It
// returns, per contender, why it cannot run.
func ensureInstalled(ctx context.Context, cs []contender, in *installer) map[string]string {
	skip := map[string]string{}
	for _, c := range cs {
		if c.bin == "" {
			continue
		}
		if err := in.ensure(ctx, c.bin, c.pkgs); err != nil {
			skip[c.name] = err.Error()
		}
	}
	return skip
}

func tail(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 300 {
		s = "…" + s[len(s)-300:]
	}
	return s
}
