package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"
	"sort"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chartv2 "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const (
	chartDir    = "helm/switchyard"
	releaseName = "switchyard"
	releaseNS   = "switchyard"
	// The Kubernetes version the chart is rendered for: the release of the
	// k8s.io/api module the objects are decoded with (v0.37).
	kubeVersion = "v1.37.0"
)

// newObject returns an empty typed object for an apiVersion and kind the
// chart may produce; every kind it renders must be listed here.
func newObject(apiVersion, kind string) (runtime.Object, error) {
	switch apiVersion + "/" + kind {
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1/Service":
		return &corev1.Service{}, nil
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1/StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, nil
	case "rbac.authorization.k8s.io/v1/Role":
		return &rbacv1.Role{}, nil
	case "rbac.authorization.k8s.io/v1/RoleBinding":
		return &rbacv1.RoleBinding{}, nil
	case "rbac.authorization.k8s.io/v1/ClusterRole":
		return &rbacv1.ClusterRole{}, nil
	case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}, nil
	case "monitoring.coreos.com/v1/ServiceMonitor":
		return &monitoringv1.ServiceMonitor{}, nil
	}
	return nil, fmt.Errorf("apiVersion %s kind %s: not a kind the chart should render", apiVersion, kind)
}

// object is one rendered, strictly decoded object.
type object struct {
	source string // template file
	kind   string
	name   string
	ns     string
	yaml   string // the document as rendered
	obj    runtime.Object
}

func (o object) String() string { return o.kind + "/" + o.name + " (" + o.source + ")" }

// rendered is the chart rendered for one set of values.
type rendered struct {
	objects []object
	notes   string
}

// loadChart loads the chart directory.
func loadChart(t *testing.T) *chartv2.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return c
}

// renderValues renders the chart with values (YAML, over values.yaml) the
// way `helm install` does, schema validation included.
func renderValues(c *chartv2.Chart, valuesYAML string) (rendered, error) {
	var vals map[string]any
	if err := yaml.Unmarshal([]byte(valuesYAML), &vals); err != nil {
		return rendered{}, fmt.Errorf("values: %w", err)
	}
	if !chartutil.IsCompatibleRange(c.Metadata.KubeVersion, kubeVersion) {
		return rendered{}, fmt.Errorf("chart kubeVersion %q excludes %s", c.Metadata.KubeVersion, kubeVersion)
	}
	caps := common.DefaultCapabilities.Copy()
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		return rendered{}, err
	}
	caps.KubeVersion = *kv
	caps.APIVersions = append(slices.Clone(caps.APIVersions), "monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor")
	opts := common.ReleaseOptions{Name: releaseName, Namespace: releaseNS, Revision: 1, IsInstall: true}
	rv, err := util.ToRenderValuesWithSchemaValidation(c, vals, opts, caps, false)
	if err != nil {
		return rendered{}, err
	}
	files, err := engine.Render(c, rv)
	if err != nil {
		return rendered{}, err
	}
	var out rendered
	for _, name := range slices.Sorted(maps.Keys(files)) {
		body := files[name]
		if strings.HasSuffix(name, "NOTES.txt") {
			out.notes = body
			continue
		}
		if path.Ext(name) != ".yaml" {
			continue
		}
		objs, err := decodeAll(path.Base(name), body)
		if err != nil {
			return rendered{}, err
		}
		out.objects = append(out.objects, objs...)
	}
	return out, nil
}

// decodeAll splits a YAML stream and decodes each document strictly into
// its typed object: unknown or duplicate fields, and kinds the chart
// should not render, are errors naming the document.
func decodeAll(source, body string) ([]object, error) {
	r := k8syaml.NewYAMLReader(bufio.NewReader(strings.NewReader(body)))
	var out []object
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i, err)
		}
		if len(bytes.TrimSpace(stripComments(doc))) == 0 {
			continue
		}
		o, err := decodeStrict(source, doc)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w\n%s", source, i, err, doc)
		}
		out = append(out, o)
	}
}

func stripComments(doc []byte) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(string(doc), "\n") {
		if t := strings.TrimSpace(line); t != "" && !strings.HasPrefix(t, "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.Bytes()
}

// decodeStrict decodes one YAML document into its typed object, the way
// the API server's strict field validation does.
func decodeStrict(source string, doc []byte) (object, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return object{}, err
	}
	var tm metav1.TypeMeta
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, &tm); err != nil {
		return object{}, err
	}
	obj, err := newObject(tm.APIVersion, tm.Kind)
	if err != nil {
		return object{}, err
	}
	strict, err := sigsjson.UnmarshalStrict(js, obj, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return object{}, err
	}
	if len(strict) > 0 {
		return object{}, fmt.Errorf("strict decoding %s/%s: %w", tm.APIVersion, tm.Kind, errors.Join(strict...))
	}
	m, ok := obj.(metav1.Object)
	if !ok {
		return object{}, fmt.Errorf("%s has no metadata", tm.Kind)
	}
	if m.GetName() == "" {
		return object{}, fmt.Errorf("%s without a name", tm.Kind)
	}
	return object{source: source, kind: tm.Kind, name: m.GetName(), ns: m.GetNamespace(), yaml: string(doc), obj: obj}, nil
}

// render renders valuesYAML and fails the test on any error.
func render(t *testing.T, c *chartv2.Chart, valuesYAML string) rendered {
	t.Helper()
	r, err := renderValues(c, valuesYAML)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return r
}

// of returns the objects of kind.
func (r rendered) of(kind string) []object {
	var out []object
	for _, o := range r.objects {
		if o.kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// get returns the object of kind and name, or fails.
func (r rendered) get(t *testing.T, kind, name string) runtime.Object {
	t.Helper()
	for _, o := range r.objects {
		if o.kind == kind && o.name == name {
			return o.obj
		}
	}
	t.Fatalf("no %s/%s among %v", kind, name, r.kinds())
	return nil
}

// kinds lists "Kind/name" of every object, sorted.
func (r rendered) kinds() []string {
	var out []string
	for _, o := range r.objects {
		out = append(out, o.kind+"/"+o.name)
	}
	sort.Strings(out)
	return out
}

// podSpecs returns every pod template: Deployments and StatefulSets.
func (r rendered) podSpecs() map[string]*corev1.PodTemplateSpec {
	out := map[string]*corev1.PodTemplateSpec{}
	for _, o := range r.objects {
		switch x := o.obj.(type) {
		case *appsv1.Deployment:
			out["Deployment/"+o.name] = &x.Spec.Template
		case *appsv1.StatefulSet:
			out["StatefulSet/"+o.name] = &x.Spec.Template
		}
	}
	return out
}
