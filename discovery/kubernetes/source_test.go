package kubernetes

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	k8stesting "k8s.io/client-go/testing"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/engines/capacity"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// The EndpointSlices of a Service: endpoints appear (ready), turn not
// ready, terminate (draining), come back, and disappear (gone); capacity
// comes from the pods' annotations or the app's default.
func TestServiceEndpointsLifecycle(t *testing.T) {
	ctx := ctxT(t)
	h100 := map[string]string{AnnotationAccelerator: "H100", AnnotationCards: "8"}
	e := newEnv(t,
		slice("ml", "vllm-abc", "vllm", map[string]int{"http": 8000},
			epSpec{pod: "vllm-0", ip: "10.1.0.10", ready: true},
			epSpec{pod: "vllm-1", ip: "10.1.0.11", ready: true}),
		slice("ml", "other-xyz", "other", map[string]int{"http": 8000}, epSpec{pod: "other-0", ip: "10.1.0.99", ready: true}),
		pod("ml", "vllm-0", "10.1.0.10", true, nil, h100),
		pod("ml", "vllm-1", "10.1.0.11", true, nil, nil),
	)
	e.start(Config{Apps: []AppConfig{{App: "llama", Service: "vllm", Port: "http", Accelerator: "A10", Cards: 1}}})

	l := e.waitList("llama", "two ready nodes", func(l discovery.OnlineList) bool { return states(l) == "ml/vllm-0=ready ml/vllm-1=ready" })
	n := nodesByID(l)
	if got := n["ml/vllm-0"].Addresses["http"]; got != "10.1.0.10:8000" {
		t.Errorf("address %q", got)
	}
	want0 := capacity.Default().ForCards("H100", 8).Value
	want1 := capacity.Default().ForCards("A10", 1).Value
	if n["ml/vllm-0"].Capacity != want0 || n["ml/vllm-0"].Accelerator != (discovery.Accelerator{Model: "H100", Count: 8}) {
		t.Errorf("annotated pod: capacity %g %+v, want %g H100×8", n["ml/vllm-0"].Capacity, n["ml/vllm-0"].Accelerator, want0)
	}
	if n["ml/vllm-1"].Capacity != want1 || n["ml/vllm-1"].Accelerator.Model != "A10" {
		t.Errorf("pod without annotations: capacity %g %+v, want the app default %g (A10×1)", n["ml/vllm-1"].Capacity, n["ml/vllm-1"].Accelerator, want1)
	}
	if l.Epoch == 0 || l.Version == 0 || n["ml/vllm-0"].Version != l.Version {
		t.Errorf("epoch %d version %d node version %d", l.Epoch, l.Version, n["ml/vllm-0"].Version)
	}
	if e.src.Stale("llama") {
		t.Error("stale with every watch working")
	}

	update := func(eps ...epSpec) {
		t.Helper()
		if _, err := e.kube.DiscoveryV1().EndpointSlices("ml").Update(ctx, slice("ml", "vllm-abc", "vllm", map[string]int{"http": 8000}, eps...), metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name string
		eps  []epSpec
		want string
	}{
		{"vllm-1 not ready", []epSpec{{pod: "vllm-0", ip: "10.1.0.10", ready: true}, {pod: "vllm-1", ip: "10.1.0.11"}}, "ml/vllm-0=ready ml/vllm-1=draining"},
		{"vllm-1 ready again", []epSpec{{pod: "vllm-0", ip: "10.1.0.10", ready: true}, {pod: "vllm-1", ip: "10.1.0.11", ready: true}}, "ml/vllm-0=ready ml/vllm-1=ready"},
		{"vllm-0 terminating (still serving)", []epSpec{{pod: "vllm-0", ip: "10.1.0.10", ready: true, terminating: true}, {pod: "vllm-1", ip: "10.1.0.11", ready: true}}, "ml/vllm-0=draining ml/vllm-1=ready"},
		{"vllm-0 removed, vllm-2 appears", []epSpec{{pod: "vllm-1", ip: "10.1.0.11", ready: true}, {pod: "vllm-2", ip: "10.1.0.12", ready: true}}, "ml/vllm-1=ready ml/vllm-2=ready"},
	}
	for _, st := range steps {
		before, _ := e.src.List("llama")
		start := time.Now()
		update(st.eps...)
		l := e.waitList("llama", st.name, func(l discovery.OnlineList) bool { return states(l) == st.want })
		t.Logf("%s: list version %d → %d, %v after the update", st.name, before.Version, l.Version, time.Since(start))
		if l.Version <= before.Version {
			t.Errorf("%s: version did not grow: %d → %d", st.name, before.Version, l.Version)
		}
	}
	// A node that did not change keeps its snapshot (and version).
	l1, _ := e.src.List("llama")
	update(epSpec{pod: "vllm-1", ip: "10.1.0.11", ready: true}, epSpec{pod: "vllm-2", ip: "10.1.0.12"})
	l2 := e.waitList("llama", "vllm-2 not ready", func(l discovery.OnlineList) bool { return states(l) == "ml/vllm-1=ready ml/vllm-2=draining" })
	if nodesByID(l1)["ml/vllm-1"] != nodesByID(l2)["ml/vllm-1"] {
		t.Error("unchanged node was rebuilt instead of shared")
	}

	// The Service's last slice is deleted: the app has no nodes.
	if err := e.kube.DiscoveryV1().EndpointSlices("ml").Delete(ctx, "vllm-abc", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitList("llama", "empty after the slice is deleted", func(l discovery.OnlineList) bool { return len(l.Nodes) == 0 })

	// A pod's annotation changes its capacity.
	if _, err := e.kube.DiscoveryV1().EndpointSlices("ml").Create(ctx, slice("ml", "vllm-def", "vllm", map[string]int{"http": 8000},
		epSpec{pod: "vllm-1", ip: "10.1.0.11", ready: true}), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitList("llama", "vllm-1 back", func(l discovery.OnlineList) bool { return states(l) == "ml/vllm-1=ready" })
	if _, err := e.kube.CoreV1().Pods("ml").Update(ctx, pod("ml", "vllm-1", "10.1.0.11", true, nil, map[string]string{AnnotationAccelerator: "H100", AnnotationCards: "2"}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := capacity.Default().ForCards("H100", 2).Value
	e.waitList("llama", "capacity from the new annotation", func(l discovery.OnlineList) bool {
		return len(l.Nodes) == 1 && l.Nodes[0].Capacity == want
	})
}

// Pods by label selector in two namespaces; container port by name; the
// PodReady condition and deletion decide the state.
func TestPodsBySelectorInTwoNamespaces(t *testing.T) {
	ctx := ctxT(t)
	lb := map[string]string{"app": "vllm"}
	port := corev1.ContainerPort{Name: "http", ContainerPort: 8000}
	e := newEnv(t,
		pod("a", "p0", "10.2.0.1", true, lb, nil, port),
		pod("a", "p1", "10.2.0.2", false, lb, nil, port),
		pod("a", "unrelated", "10.2.0.3", true, map[string]string{"app": "web"}, nil, port),
		pod("b", "p0", "10.3.0.1", true, lb, map[string]string{AnnotationCards: "4"}, port),
		pod("b", "pending", "", false, lb, nil, port),
	)
	e.start(Config{Apps: []AppConfig{{App: "llama", Namespaces: []string{"a", "b"}, Selector: "app=vllm", Port: "http", Capacity: 2}}})
	l := e.waitList("llama", "pods of both namespaces", func(l discovery.OnlineList) bool {
		return states(l) == "a/p0=ready a/p1=draining b/p0=ready"
	})
	n := nodesByID(l)
	if n["b/p0"].Addresses["http"] != "10.3.0.1:8000" || n["a/p0"].Capacity != 2 {
		t.Errorf("b/p0 %v, a/p0 capacity %g (want the app's 2)", n["b/p0"].Addresses, n["a/p0"].Capacity)
	}
	if want := capacity.Default().ForCards("", 4).Value; n["b/p0"].Capacity != want {
		t.Errorf("4 cards of no model: capacity %g, want %g (the table default)", n["b/p0"].Capacity, want)
	}

	// Deleting with a grace period: the API server sets the deletion
	// timestamp first (the fake deletes at once, so set it by hand).
	p := pod("a", "p0", "10.2.0.1", true, lb, nil, port)
	p.DeletionTimestamp = &metav1.Time{Time: time.Now()}
	if _, err := e.kube.CoreV1().Pods("a").Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitList("llama", "a/p0 terminating", func(l discovery.OnlineList) bool { return states(l) == "a/p0=draining a/p1=draining b/p0=ready" })
	if err := e.kube.CoreV1().Pods("a").Delete(ctx, "p0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitList("llama", "a/p0 gone", func(l discovery.OnlineList) bool { return states(l) == "a/p1=draining b/p0=ready" })
	// A status change discovery does not read publishes nothing new; the
	// next real change does.
	before, _ := e.src.List("llama")
	p1 := pod("a", "p1", "10.2.0.2", false, lb, nil, port)
	p1.Status.Conditions = append(p1.Status.Conditions, corev1.PodCondition{Type: corev1.ContainersReady, Status: corev1.ConditionFalse})
	if _, err := e.kube.CoreV1().Pods("a").Update(ctx, p1, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.kube.CoreV1().Pods("a").Update(ctx, pod("a", "p1", "10.2.0.2", true, lb, nil, port), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	after := e.waitList("llama", "a/p1 ready", func(l discovery.OnlineList) bool { return states(l) == "a/p1=ready b/p0=ready" })
	if after.Version != before.Version+1 {
		t.Errorf("version %d → %d: the ignored status change published a list", before.Version, after.Version)
	}
}

// A Service's EndpointSlices in a namespace the gateway may not read: the
// other namespace's nodes are listed, the app is stale with an error that
// says what RBAC is missing, and it recovers once the permission exists.
func TestForbiddenNamespace(t *testing.T) {
	var forbidden atomic.Bool
	forbidden.Store(true)
	e := newEnv(t,
		slice("ml", "vllm-1", "vllm", map[string]int{"http": 8000}, epSpec{pod: "a", ip: "10.1.0.1", ready: true}),
		slice("secret", "vllm-2", "vllm", map[string]int{"http": 8000}, epSpec{pod: "b", ip: "10.9.0.1", ready: true}),
	)
	deny := func(action k8stesting.Action) (bool, runtime.Object, error) {
		if action.GetNamespace() != "secret" || !forbidden.Load() {
			return false, nil, nil
		}
		gr := schema.GroupResource{Group: action.GetResource().Group, Resource: action.GetResource().Resource}
		return true, nil, apierrors.NewForbidden(gr, "", errors.New(`User "system:serviceaccount:gw:switchyard" cannot list resource in namespace "secret"`))
	}
	e.kube.PrependReactor("list", "*", deny)
	e.kube.PrependWatchReactor("*", func(action k8stesting.Action) (bool, watch.Interface, error) {
		handled, _, err := deny(action)
		return handled, nil, err
	})
	e.start(Config{Apps: []AppConfig{{App: "llama", Namespaces: []string{"ml", "secret"}, Service: "vllm"}}})

	l := e.waitList("llama", "the readable namespace's node", func(l discovery.OnlineList) bool { return states(l) == "ml/a=ready" })
	e.waitFor("stale", func() bool { return e.src.Stale("llama") })
	st, _ := e.src.Status("llama")
	msg := st.Err.Error()
	for _, want := range []string{"forbidden", `namespace "secret"`, "get, list and watch", "endpointslices"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	if !apierrors.IsForbidden(st.Err) {
		t.Errorf("error does not wrap the API error: %v", st.Err)
	}
	if !e.logged("WARN kubernetes: watch failing") {
		t.Error("no warning logged")
	}
	if st.Nodes != 1 || st.Version != l.Version {
		t.Errorf("status %+v", st)
	}

	forbidden.Store(false) // the RBAC is fixed
	e.waitList("llama", "both namespaces", func(l discovery.OnlineList) bool { return states(l) == "ml/a=ready secret/b=ready" })
	e.waitFor("not stale", func() bool { return !e.src.Stale("llama") })
	if !e.logged("INFO kubernetes: watch recovered") {
		t.Error("recovery not logged")
	}
}

// The API server is unreachable from the start for every watch: no list,
// stale, and Run still stops cleanly.
func TestUnreachableFromStart(t *testing.T) {
	e := newEnv(t)
	e.kube.PrependReactor("list", "*", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, errors.New("dial tcp 10.96.0.1:443: connect: connection refused")
	})
	e.start(Config{Apps: []AppConfig{{App: "llama", Service: "vllm"}}})
	// Stale at the first failed watch; "synced" (nothing more to wait for)
	// once every watch of the app has failed or listed.
	e.waitFor("stale and every watch answered", func() bool {
		st, _ := e.src.Status("llama")
		return st.Stale && st.Synced
	})
	if _, ok := e.src.List("llama"); ok {
		t.Error("a list was published with nothing known")
	}
	st, _ := e.src.Status("llama")
	if !strings.Contains(st.Err.Error(), "connection refused") {
		t.Errorf("status %+v", st)
	}
}

func TestRunTwice(t *testing.T) {
	e := newEnv(t)
	src := e.start(Config{Apps: []AppConfig{{App: "x", Service: "x"}}})
	e.waitList("x", "the empty list", func(l discovery.OnlineList) bool { return len(l.Nodes) == 0 })
	if err := src.Run(ctxT(t)); err == nil {
		t.Fatal("second Run succeeded")
	}
	if _, ok := src.List("nope"); ok {
		t.Error("List of an unknown app")
	}
	if _, ok := src.Status("nope"); ok {
		t.Error("Status of an unknown app")
	}
}
