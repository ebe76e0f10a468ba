package kubernetes

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/switchyard-dev/switchyard/discovery/scrape"
)

// The `kubernetes:` block as the gateway's YAML config holds it, decoded
// strictly the way the gateway decodes its config.
const exampleYAML = `
namespace: serving
scrape: {interval: 2s, timeout: 500ms, concurrency: 8}
load_coalesce: 1500ms
apps:
  - app: llama
    service: vllm-llama
    port: http
    engine: vllm
    accelerator: H100
    cards: 8
  - app: qwen
    namespaces: [team-a, team-b]
    selector: "app=vllm,model in (qwen)"
    port: 8000
    grpc_port: grpc
    metrics_port: 9400
    metrics_path: /stats
    capacity: 2.5
  - app: gie
    inference_pool: llama-pool
    engine: sglang
`

func TestConfigYAML(t *testing.T) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader([]byte(exampleYAML)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	c.ApplyDefaults()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.Scrape.Interval != 2*time.Second || c.Scrape.Timeout != 500*time.Millisecond || c.Scrape.Concurrency != 8 || c.LoadCoalesce != 1500*time.Millisecond {
		t.Errorf("scrape %+v coalesce %v", c.Scrape, c.LoadCoalesce)
	}
	a := c.Apps[1]
	if a.Port != "8000" || a.GRPCPort != "grpc" || a.Capacity != 2.5 || strings.Join(a.Namespaces, ",") != "team-a,team-b" || a.kind() != kindPods {
		t.Errorf("app qwen: %+v", a)
	}
	if got := c.Apps[0].Namespaces; len(got) != 1 || got[0] != "serving" || c.Apps[0].Capacity != 1 || c.Apps[0].kind() != kindService {
		t.Errorf("app llama defaults: %+v", c.Apps[0])
	}
	if c.Apps[2].kind() != kindPool {
		t.Error("gie is not a pool app")
	}

	bad := yaml.NewDecoder(strings.NewReader("apps: [{app: x, servic: y}]"))
	bad.KnownFields(true)
	if err := bad.Decode(&Config{}); err == nil || !strings.Contains(err.Error(), "servic") {
		t.Errorf("unknown key: %v", err)
	}
}

func TestConfigValidate(t *testing.T) {
	ok := AppConfig{App: "a", Service: "svc"}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string // the field the error must start with; "" = valid
	}{
		{"service", Config{Apps: []AppConfig{ok}}, ""},
		{"no apps", Config{}, "kubernetes.apps:"},
		{"duplicate app", Config{Apps: []AppConfig{ok, ok}}, "kubernetes.apps[1].app:"},
		{"no app name", Config{Apps: []AppConfig{{Service: "svc"}}}, "kubernetes.apps[0].app:"},
		{"nothing to watch", Config{Apps: []AppConfig{{App: "a"}}}, "kubernetes.apps[0] (app a): set exactly one"},
		{"service and pool", Config{Apps: []AppConfig{{App: "a", Service: "s", InferencePool: "p"}}}, "kubernetes.apps[0] (app a): set exactly one"},
		{"selector with pool", Config{Apps: []AppConfig{{App: "a", InferencePool: "p", Selector: "x=y"}}}, "kubernetes.apps[0] (app a): set exactly one"},
		{"selector narrows service", Config{Apps: []AppConfig{{App: "a", Service: "s", Selector: "x=y"}}}, ""},
		{"bad selector", Config{Apps: []AppConfig{{App: "a", Selector: "x in ("}}}, "kubernetes.apps[0] (app a).selector:"},
		{"bad service name", Config{Apps: []AppConfig{{App: "a", Service: "Bad_Name"}}}, "kubernetes.apps[0] (app a).service:"},
		{"bad namespace", Config{Apps: []AppConfig{{App: "a", Service: "s", Namespaces: []string{"a.b"}}}}, "kubernetes.apps[0] (app a).namespaces[0]:"},
		{"bad default namespace", Config{Namespace: "UPPER", Apps: []AppConfig{ok}}, "kubernetes.namespace:"},
		{"port 0", Config{Apps: []AppConfig{{App: "a", Service: "s", Port: "0"}}}, "kubernetes.apps[0] (app a).port:"},
		{"bad port name", Config{Apps: []AppConfig{{App: "a", Service: "s", GRPCPort: "not a name"}}}, "kubernetes.apps[0] (app a).grpc_port:"},
		{"unknown engine", Config{Apps: []AppConfig{{App: "a", Service: "s", Engine: "nope"}}}, "kubernetes.apps[0] (app a).engine:"},
		{"metrics path", Config{Apps: []AppConfig{{App: "a", Service: "s", MetricsPath: "metrics"}}}, "kubernetes.apps[0] (app a).metrics_path:"},
		{"metrics port", Config{Apps: []AppConfig{{App: "a", Service: "s", MetricsPort: 70000}}}, "kubernetes.apps[0] (app a).metrics_port:"},
		{"cards", Config{Apps: []AppConfig{{App: "a", Service: "s", Cards: -1}}}, "kubernetes.apps[0] (app a).cards:"},
		{"capacity", Config{Apps: []AppConfig{{App: "a", Service: "s", Capacity: -2}}}, "kubernetes.apps[0] (app a).capacity:"},
		{"scrape interval", Config{Apps: []AppConfig{ok}, Scrape: scrape.Config{Interval: time.Millisecond}}, "kubernetes.scrape.interval:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			if c.Namespace == "" {
				c.Namespace = "ml" // not the machine's own
			}
			c.ApplyDefaults()
			err := c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.want)):
				t.Fatalf("err %v, want one starting %q", err, tc.want)
			}
		})
	}
}

func TestNewOutsideCluster(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	_, err := New(Config{Namespace: "ml", Apps: []AppConfig{{App: "a", Service: "s"}}})
	if err == nil || !strings.Contains(err.Error(), "kubernetes.kubeconfig") {
		t.Fatalf("New without a cluster or kubeconfig: %v", err)
	}
	_, err = New(Config{Namespace: "ml", Kubeconfig: t.TempDir() + "/missing", Apps: []AppConfig{{App: "a", Service: "s"}}})
	if err == nil || !strings.HasPrefix(err.Error(), "kubernetes.kubeconfig:") {
		t.Fatalf("New with a missing kubeconfig: %v", err)
	}
}
