package kubernetes

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/switchyard-dev/switchyard/discovery"
)

// An InferencePool (inference.networking.k8s.io/v1): its selector picks
// pods in its namespace, each target port is a node; a spec edit moves
// the nodes; an h2c pool gives gRPC addresses; a spec with a field this
// version does not know keeps the last list and marks the app stale; a
// deleted pool leaves the app empty.
func TestInferencePool(t *testing.T) {
	ctx := ctxT(t)
	lb := map[string]string{"app": "llama"}
	spec := map[string]any{
		"selector":    map[string]any{"matchLabels": map[string]any{"app": "llama"}},
		"targetPorts": []any{map[string]any{"number": int64(8000)}, map[string]any{"number": int64(8001)}},
		"endpointPickerRef": map[string]any{
			"name": "llama-epp", "port": map[string]any{"number": int64(9002)}, "failureMode": "FailClose",
		},
	}
	e := newEnv(t,
		pool("ml", "llama-pool", spec),
		pod("ml", "llama-0", "10.4.0.1", true, lb, map[string]string{AnnotationAccelerator: "Ascend910B", AnnotationCards: "8"}),
		pod("ml", "llama-1", "10.4.0.2", false, lb, nil),
		pod("ml", "web-0", "10.4.0.9", true, map[string]string{"app": "web"}, nil),
	)
	e.start(Config{Apps: []AppConfig{{App: "llama", InferencePool: "llama-pool"}}})
	l := e.waitList("llama", "one node per pod and target port", func(l discovery.OnlineList) bool {
		return states(l) == "ml/llama-0:8000=ready ml/llama-0:8001=ready ml/llama-1:8000=draining ml/llama-1:8001=draining"
	})
	n := nodesByID(l)
	if got := n["ml/llama-0:8001"].Addresses; got["http"] != "10.4.0.1:8001" || got["grpc"] != "" {
		t.Errorf("addresses %v", got)
	}
	if n["ml/llama-0:8000"].Accelerator.Model != "Ascend910B" || n["ml/llama-0:8000"].Accelerator.Count != 8 {
		t.Errorf("accelerator %+v", n["ml/llama-0:8000"].Accelerator)
	}

	updatePool := func(spec map[string]any) {
		t.Helper()
		if _, err := e.dyn.Resource(InferencePoolResource).Namespace("ml").Update(ctx, pool("ml", "llama-pool", spec), metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// One h2c port: gRPC addresses, ids without the port.
	updatePool(map[string]any{
		"selector":    map[string]any{"matchLabels": map[string]any{"app": "llama"}},
		"targetPorts": []any{map[string]any{"number": int64(9000)}},
		"appProtocol": "kubernetes.io/h2c",
	})
	l = e.waitList("llama", "h2c, one port", func(l discovery.OnlineList) bool { return states(l) == "ml/llama-0=ready ml/llama-1=draining" })
	if got := nodesByID(l)["ml/llama-0"].Addresses; got["grpc"] != "10.4.0.1:9000" || got["http"] != "" {
		t.Errorf("h2c addresses %v", got)
	}

	// A spec field this version does not know: keep the list, stale, the
	// error names the field.
	updatePool(map[string]any{
		"selector":     map[string]any{"matchLabels": map[string]any{"app": "llama"}},
		"targetPorts":  []any{map[string]any{"number": int64(9000)}},
		"modelWeights": "s3://nope",
	})
	e.waitFor("stale on an unknown spec field", func() bool { return e.src.Stale("llama") })
	st, _ := e.src.Status("llama")
	if !strings.Contains(st.Err.Error(), "modelWeights") || st.Nodes != 2 {
		t.Errorf("status %+v (err %v)", st, st.Err)
	}
	if cur, _ := e.src.List("llama"); cur.Version != l.Version {
		t.Errorf("list changed while the pool could not be read: %d → %d", l.Version, cur.Version)
	}

	// Fixed, selecting the web pod instead.
	updatePool(map[string]any{
		"selector":    map[string]any{"matchLabels": map[string]any{"app": "web"}},
		"targetPorts": []any{map[string]any{"number": int64(80)}},
	})
	e.waitList("llama", "the web pod", func(l discovery.OnlineList) bool { return states(l) == "ml/web-0=ready" })
	e.waitFor("fresh again", func() bool { return !e.src.Stale("llama") })

	// A new matching pod appears.
	if _, err := e.kube.CoreV1().Pods("ml").Create(ctx, pod("ml", "web-1", "10.4.0.10", true, map[string]string{"app": "web"}, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitList("llama", "web-1 appears", func(l discovery.OnlineList) bool { return states(l) == "ml/web-0=ready ml/web-1=ready" })

	if err := e.dyn.Resource(InferencePoolResource).Namespace("ml").Delete(ctx, "llama-pool", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitList("llama", "empty once the pool is deleted", func(l discovery.OnlineList) bool { return len(l.Nodes) == 0 })
	if !e.logged("InferencePool not found") {
		t.Error("a missing pool is not logged")
	}
}

func TestDecodePoolSpecStrict(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec map[string]any
		want string
	}{
		{"full v1 spec", map[string]any{
			"selector":          map[string]any{"matchLabels": map[string]any{"a": "b"}},
			"targetPorts":       []any{map[string]any{"number": int64(8000)}},
			"appProtocol":       "http",
			"endpointPickerRef": map[string]any{"group": "", "kind": "Service", "name": "epp", "port": map[string]any{"number": int64(9002)}, "failureMode": "FailOpen"},
		}, ""},
		{"unknown top-level field", map[string]any{"selector": map[string]any{}, "extensionRef": map[string]any{"name": "old-v1alpha2"}}, "extensionRef"},
		{"unknown nested field", map[string]any{"selector": map[string]any{"matchExpressions": []any{}}}, "matchExpressions"},
		{"wrong type", map[string]any{"targetPorts": "8000"}, "targetPorts"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := decodePoolSpec(pool("ml", "p", tc.spec))
			switch {
			case tc.want == "" && err != nil:
				t.Fatal(err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err %v, want one naming %s", err, tc.want)
			}
		})
	}
}

// The pods informer keeps only what discovery reads.
func TestSlimPod(t *testing.T) {
	p := pod("ml", "x", "10.0.0.1", true, map[string]string{"a": "b"}, map[string]string{AnnotationCards: "2"},
		corev1.ContainerPort{Name: "http", ContainerPort: 8000})
	p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "HF_TOKEN", Value: "secret"}}
	p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: "no-ports", Image: "x"})
	got, err := slimPod(p)
	if err != nil {
		t.Fatal(err)
	}
	s := got.(*corev1.Pod)
	if len(s.Spec.Containers) != 1 || s.Spec.Containers[0].Env != nil || s.Spec.Containers[0].Image != "" ||
		s.Spec.Containers[0].Ports[0].ContainerPort != 8000 {
		t.Errorf("containers %+v", s.Spec.Containers)
	}
	if len(s.Status.Conditions) != 1 || s.Status.Conditions[0].Type != corev1.PodReady || s.Annotations[AnnotationCards] != "2" || s.Status.PodIP != "10.0.0.1" {
		t.Errorf("kept %+v", s)
	}
	if podState(s) != discovery.StateReady {
		t.Error("slimmed pod is not ready")
	}
}
