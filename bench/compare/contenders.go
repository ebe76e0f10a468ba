package compare

import (
	"bytes"
	"context"
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
	// command returns the process to run (nil for direct) listening on
	// listen and forwarding to backends; dir is its private temp dir.
	command func(env *runEnv, dir, listen string, backends []string) (*exec.Cmd, error)
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
		{name: "direct"},
		{name: "switchyard", command: switchyardCmd},
		{name: "minproxy", command: minproxyCmd},
		{name: "nginx", pkgs: []string{"nginx-light", "nginx"}, bin: "nginx", command: nginxCmd},
		{name: "haproxy", pkgs: []string{"haproxy"}, bin: "haproxy", command: haproxyCmd},
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

func switchyardCmd(e *runEnv, dir, listen string, backends []string) (*exec.Cmd, error) {
	urls := make([]string, len(backends))
	for i, b := range backends {
		urls[i] = "http://" + b
	}
	return e.pinned(dir, e.self, "gateway", "--listen", listen, "--route", "bench="+strings.Join(urls, ",")), nil
}

// baseName is the contender of Config.BaselineBin.
const baseName = "switchyard-base"

func switchyardBaseCmd(e *runEnv, dir, listen string, backends []string) (*exec.Cmd, error) {
	if e.base == "" {
		return nil, fmt.Errorf("compare: no baseline binary given")
	}
	cmd, _ := switchyardCmd(e, dir, listen, backends)
	if e.taskset != "" {
		cmd.Args[3] = e.base // taskset -c N BIN ...
	} else {
		cmd.Path, cmd.Args[0] = e.base, e.base
	}
	return cmd, nil
}

func minproxyCmd(e *runEnv, dir, listen string, backends []string) (*exec.Cmd, error) {
	return e.pinned(dir, e.self, "bench", "minproxy", "--listen", listen, "--upstream", strings.Join(backends, ",")), nil
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

type confData struct {
	Dir      string
	Listen   string
	Backends []string
}

// NginxConf is nginx's configuration: one worker, upstream keep-alive,
// HTTP/1.1 to the backends, no access log.
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
    server {
        listen {{.Listen}};
        keepalive_requests 1000000;
        location / {
            proxy_pass http://backends;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`

func nginxCmd(e *runEnv, dir, listen string, backends []string) (*exec.Cmd, error) {
	conf, err := render(dir, "nginx.conf", NginxConf, confData{dir, listen, backends})
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
// the backends, round robin.
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
backend be
    balance roundrobin
{{- range $i, $b := .Backends}}
    server s{{$i}} {{$b}}
{{- end}}
`

func haproxyCmd(e *runEnv, dir, listen string, backends []string) (*exec.Cmd, error) {
	conf, err := render(dir, "haproxy.cfg", HAProxyConf, confData{dir, listen, backends})
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

func caddyCmd(e *runEnv, dir, listen string, backends []string) (*exec.Cmd, error) {
	conf, err := render(dir, "Caddyfile", CaddyConf, confData{dir, listen, backends})
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

// ensureInstalled installs the missing packages of the contenders, running
// apt-get update once. It returns, per contender, why it cannot run.
func ensureInstalled(ctx context.Context, cs []contender, install bool, log func(string, ...any)) map[string]string {
	skip := map[string]string{}
	updated := false
	for _, c := range cs {
		if c.bin == "" {
			continue
		}
		if _, err := lookBin(c.bin); err == nil {
			continue
		}
		if !install {
			skip[c.name] = c.bin + " is not installed (install disabled)"
			continue
		}
		if os.Geteuid() != 0 {
			skip[c.name] = c.bin + " is not installed and apt-get needs root"
			continue
		}
		if !updated {
			log("apt-get update")
			if out, err := exec.CommandContext(ctx, "apt-get", "update").CombinedOutput(); err != nil {
				log("apt-get update failed: %v: %s", err, tail(out))
			}
			updated = true
		}
		var last string
		for _, p := range c.pkgs {
			log("apt-get install -y %s", p)
			cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "--no-install-recommends", p)
			cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
			out, err := cmd.CombinedOutput()
			if err == nil {
				last = ""
				break
			}
			last = fmt.Sprintf("apt-get install %s: %v: %s", p, err, tail(out))
		}
		if _, err := lookBin(c.bin); err != nil {
			if last == "" {
				last = "installed but " + c.bin + " not found"
			}
			skip[c.name] = last
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
