package deploy

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite kubernetes/ from the chart")

// The plain manifests under kubernetes/, for people who do not use Helm:
// the chart rendered with these values (release "switchyard" in namespace
// "switchyard"), without Helm's own labels.
var manifests = []struct {
	file, about, values string
}{
	{"switchyard.yaml", "the gateway and the Resource tier (engines run the agent: examples/vllm-deployment-agent.yaml)", `
token: {existingSecret: switchyard-token}
networkPolicy: {enabled: true}
`},
	{"switchyard-kubernetes-discovery.yaml", "the gateway alone, discovering the vLLM pods of examples/vllm-deployment.yaml through the Kubernetes API", `
resource: {enabled: false}
gateway:
  config:
    routes:
      - {name: llama-3-8b, match: {models: [llama-3-8b]}, app: llama-3-8b}
  kubernetes:
    enabled: true
    config:
      apps:
        - {app: llama-3-8b, namespaces: [models], service: vllm-llama, port: http, engine: vllm, accelerator: H100, cards: 1}
networkPolicy: {enabled: true}
`},
}

// kindOrder is the order objects are written in: what others refer to
// first (as helm install orders them).
var kindOrder = []string{"ServiceAccount", "ConfigMap", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
	"Service", "Deployment", "StatefulSet", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "ServiceMonitor"}

func TestManifestsInSync(t *testing.T) {
	c := loadChart(t)
	for _, m := range manifests {
		r := render(t, c, m.values)
		checkSecurity(t, r)
		checkFlags(t, r)
		gatewayConfig(t, r)
		objs := slices.Clone(r.objects)
		slices.SortStableFunc(objs, func(a, b object) int {
			return slices.Index(kindOrder, a.kind) - slices.Index(kindOrder, b.kind)
		})
		var b strings.Builder
		b.WriteString("# Switchyard: " + m.about + ".\n")
		b.WriteString("# Generated from deploy/helm/switchyard by `make deploy-manifests` with these values; do not edit:\n#   ")
		b.WriteString(strings.ReplaceAll(strings.Trim(m.values, "\n"), "\n", "\n#   "))
		b.WriteString("\n#\n# kubectl create namespace switchyard && kubectl -n switchyard apply -f " + m.file + "\n")
		for _, o := range objs {
			b.WriteString("---\n")
			for _, line := range strings.SplitAfter(strings.Trim(o.yaml, "\n")+"\n", "\n") {
				t := strings.TrimSpace(line)
				if strings.HasPrefix(t, "helm.sh/chart:") || t == "app.kubernetes.io/managed-by: Helm" {
					continue
				}
				b.WriteString(line)
			}
		}
		path := filepath.Join("kubernetes", m.file)
		if *update {
			if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		have, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run make deploy-manifests)", err)
		}
		if string(have) != b.String() {
			t.Errorf("%s is out of date with the chart: run make deploy-manifests", path)
		}
		// What is committed decodes strictly too.
		if _, err := decodeAll(m.file, string(have)); err != nil {
			t.Errorf("%s: %v", path, err)
		}
	}
}
