package deploy

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/switchyard-dev/switchyard/discovery/kubernetes"
	"github.com/switchyard-dev/switchyard/gateway"
)

// gatewayConfig parses the gateway config the chart writes with the
// gateway's own strict parser, applies its defaults and validates it. The
// kubernetes block is parsed strictly into discovery/kubernetes.Config and
// validated too; it goes through the gateway's parser as well once the
// gateway config has that field.
func gatewayConfig(t *testing.T, r rendered) (*gateway.Config, *kubernetes.Config) {
	t.Helper()
	cm, ok := r.get(t, "ConfigMap", gatewayName).(*corev1.ConfigMap)
	if !ok {
		t.Fatal("gateway ConfigMap is not a ConfigMap")
	}
	data := cm.Data["gateway.yaml"]
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(data), &raw); err != nil {
		t.Fatalf("gateway.yaml: %v\n%s", err, data)
	}
	var kc *kubernetes.Config
	wired := hasYAMLField(reflect.TypeFor[gateway.Config](), "kubernetes")
	if k, ok := raw["kubernetes"]; ok {
		b, err := yaml.Marshal(k)
		if err != nil {
			t.Fatal(err)
		}
		kc = &kubernetes.Config{}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(kc); err != nil {
			t.Fatalf("gateway.yaml kubernetes block: %v\n%s", err, b)
		}
		kc.ApplyDefaults()
		if err := kc.Validate(); err != nil {
			t.Fatalf("gateway.yaml kubernetes block: %v", err)
		}
		if !wired {
			delete(raw, "kubernetes") // not wired into the gateway yet
			b, err := yaml.Marshal(raw)
			if err != nil {
				t.Fatal(err)
			}
			data = string(b)
		}
	}
	c, err := gateway.ParseConfig([]byte(data))
	if err != nil {
		t.Fatalf("gateway.yaml: %v\n%s", err, data)
	}
	c.ApplyDefaults()
	v := *c
	if kc != nil && !wired && v.Discovery == nil {
		// Until the gateway reads the kubernetes block, its routes without
		// static nodes would ask for a Resource tier: stand one in so that
		// the rest of the config is still validated.
		v.Discovery = &gateway.DiscoveryConfig{Servers: []string{"kubernetes.invalid:1"}}
	}
	if err := v.Validate(); err != nil {
		t.Fatalf("gateway.yaml: %v\n%s", err, data)
	}
	if c.Listen.Client != "0.0.0.0:8080" || c.Listen.Admin != "0.0.0.0:9090" {
		t.Errorf("gateway listens on %+v, not the container ports", c.Listen)
	}
	return c, kc
}

func hasYAMLField(t reflect.Type, name string) bool {
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); tag == name {
			return true
		}
	}
	return false
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
	helpMu  sync.Mutex
	helps   = map[string]string{}
)

// TestMain removes the binary switchyardBin built (~90 MB a run).
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// switchyardBin builds the switchyard binary once per test run.
func switchyardBin(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "switchyard-deploy-test")
		if err != nil {
			binErr = err
			return
		}
		binDir = dir
		binPath = filepath.Join(dir, "switchyard")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		// Built in the repository's own module (its go.mod, not this one's).
		cmd := exec.CommandContext(ctx, "go", "build", "-o", binPath, "./cmd/switchyard")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// help returns `switchyard <command...> -h`.
func help(t *testing.T, command ...string) string {
	t.Helper()
	key := strings.Join(command, " ")
	helpMu.Lock()
	defer helpMu.Unlock()
	if h, ok := helps[key]; ok {
		return h
	}
	bin := switchyardBin(t) // built first: the build's time is not the command's
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(command, "-h")...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("switchyard %s -h: %v\n%s", key, err, out.String())
	}
	helps[key] = out.String()
	return out.String()
}

var flagArg = regexp.MustCompile(`^--([a-z][a-z0-9-]*)(=|$)`)

// checkFlags: every flag the manifests pass to switchyard (container args
// and PreStop commands) is one its command accepts.
func checkFlags(t *testing.T, r rendered) {
	t.Helper()
	for name, pt := range r.podSpecs() {
		for _, c := range append(append([]corev1.Container{}, pt.Spec.InitContainers...), pt.Spec.Containers...) {
			if isOurImage(c.Image) {
				checkCommand(t, name+" "+c.Name, c.Args)
			}
			if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Exec != nil {
				cmd := c.Lifecycle.PreStop.Exec.Command
				if len(cmd) > 0 && filepath.Base(cmd[0]) == "switchyard" {
					checkCommand(t, name+" "+c.Name+" preStop", cmd[1:])
				}
			}
		}
	}
}

func checkCommand(t *testing.T, where string, args []string) {
	t.Helper()
	var command []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			break
		}
		command = append(command, a)
	}
	if len(command) == 0 {
		t.Errorf("%s: no switchyard command in %v", where, args)
		return
	}
	h := help(t, command...)
	for _, a := range args[len(command):] {
		m := flagArg.FindStringSubmatch(a)
		if m == nil {
			t.Errorf("%s: argument %q is not a --flag", where, a)
			continue
		}
		if !regexp.MustCompile(`(?m)^\s+--?` + regexp.QuoteMeta(m[1]) + `\b`).MatchString(h) {
			t.Errorf("%s: switchyard %s has no flag --%s", where, strings.Join(command, " "), m[1])
		}
	}
}
