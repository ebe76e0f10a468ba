package deploy

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// The example values files render and pass every check.
func TestExampleValues(t *testing.T) {
	c := loadChart(t)
	files, err := filepath.Glob("examples/values-*.yaml")
	if err != nil || len(files) < 3 {
		t.Fatalf("example values: %v %v", files, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			r := render(t, c, string(b))
			checkSecurity(t, r)
			checkSelectors(t, r)
			checkGateway(t, r)
			checkRBAC(t, r)
			checkFlags(t, r)
			gatewayConfig(t, r)
		})
	}
}

// The example Deployments decode strictly and pass the same checks; the
// agentless one has what values-kubernetes-discovery.yaml names (the
// Service and its port), the agent one what the chart's Resource tier
// serves.
func TestExampleManifests(t *testing.T) {
	read := func(f string) rendered {
		t.Helper()
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := decodeAll(filepath.Base(f), string(b))
		if err != nil {
			t.Fatal(err)
		}
		return rendered{objects: objs}
	}
	for _, f := range []string{"examples/vllm-deployment.yaml", "examples/vllm-deployment-agent.yaml"} {
		r := read(f)
		checkSecurity(t, r)
		checkSelectors(t, r)
		checkFlags(t, r)
	}

	plain := read("examples/vllm-deployment.yaml")
	svc := plain.get(t, "Service", "vllm-llama").(*corev1.Service)
	b, err := os.ReadFile("examples/values-kubernetes-discovery.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "service: "+svc.Name) || !strings.Contains(string(b), "port: "+svc.Spec.Ports[0].Name) {
		t.Errorf("values-kubernetes-discovery.yaml does not name the example's Service %s and port %s", svc.Name, svc.Spec.Ports[0].Name)
	}

	agent := read("examples/vllm-deployment-agent.yaml")
	def := render(t, loadChart(t), "")
	servers := "--servers=" + strings.Join(mustGatewayServers(t, def), ",")
	for _, p := range agent.podSpecs() {
		args := p.Spec.InitContainers[0].Args
		if !slices.Contains(args, servers) {
			t.Errorf("the agent example's servers are not the chart's Resource instances: %v, want %s", args, servers)
		}
	}
}

func mustGatewayServers(t *testing.T, r rendered) []string {
	t.Helper()
	gc, _ := gatewayConfig(t, r)
	return gc.Discovery.Servers
}
