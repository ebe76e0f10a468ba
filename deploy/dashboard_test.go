package deploy

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// dashboardSource is the Grafana dashboard (checked against a live
// gateway and Resource by gateway's TestGrafanaDashboard); the chart
// carries a copy, since Helm reads no file outside the chart.
const (
	dashboardSource = "grafana/switchyard.json"
	dashboardCopy   = "helm/switchyard/dashboards/switchyard.json"
)

// TestGrafanaDashboardInChart: the chart's copy of the dashboard is the
// dashboard (cp deploy/grafana/switchyard.json
// deploy/helm/switchyard/dashboards/ after changing it).
func TestGrafanaDashboardInChart(t *testing.T) {
	src, err := os.ReadFile(dashboardSource)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := os.ReadFile(dashboardCopy)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(src, cp) {
		t.Fatalf("%s differs from %s: cp deploy/%s deploy/%s", dashboardCopy, dashboardSource, dashboardSource, dashboardCopy)
	}
	if !json.Valid(src) {
		t.Fatalf("%s is not JSON", dashboardSource)
	}
}

// TestGrafanaDashboardConfigMap: off by default; on, a ConfigMap labelled
// for the Grafana sidecar, in the namespace asked for, holding the
// dashboard as it is.
func TestGrafanaDashboardConfigMap(t *testing.T) {
	c := loadChart(t)
	for _, o := range render(t, c, "").of("ConfigMap") {
		if o.name == "switchyard-dashboard" {
			t.Fatalf("the dashboard ConfigMap renders by default: %s", o)
		}
	}
	r := render(t, c, `
grafanaDashboard:
  enabled: true
  namespace: monitoring
  labels: {release: prometheus}
  annotations: {grafana_folder: Switchyard}
`)
	cm, ok := r.get(t, "ConfigMap", "switchyard-dashboard").(*corev1.ConfigMap)
	if !ok {
		t.Fatal("the dashboard is not a ConfigMap")
	}
	if cm.Namespace != "monitoring" {
		t.Errorf("namespace %q, want monitoring", cm.Namespace)
	}
	if cm.Labels["grafana_dashboard"] != "1" || cm.Labels["release"] != "prometheus" || cm.Labels["app.kubernetes.io/part-of"] != "switchyard" {
		t.Errorf("labels %v", cm.Labels)
	}
	if cm.Annotations["grafana_folder"] != "Switchyard" {
		t.Errorf("annotations %v", cm.Annotations)
	}
	src, err := os.ReadFile(dashboardSource)
	if err != nil {
		t.Fatal(err)
	}
	if got := cm.Data["switchyard.json"]; got != strings.TrimRight(string(src), "\n") {
		t.Errorf("the ConfigMap's switchyard.json is not %s (%d bytes, want %d)", dashboardSource, len(got), len(src))
	}
	if size := cm.Size(); size > 1<<20 {
		t.Errorf("ConfigMap of %d bytes: over Kubernetes' 1 MiB", size)
	}
}
