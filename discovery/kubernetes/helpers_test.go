package kubernetes

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	dynamicfake "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/switchyard-dev/switchyard/discovery"
)

// env runs a Source against client-go's fake clientsets with real
// informers, and wakes waiters on every OnUpdate and every log record (the
// source logs each stale/recovered transition).
type env struct {
	t      *testing.T
	kube   *fake.Clientset
	dyn    *dynamicfake.FakeDynamicClient
	src    *Source
	wake   chan struct{}
	cancel context.CancelFunc
	done   chan error

	mu   sync.Mutex
	logs []string
}

func newEnv(t *testing.T, objs ...runtime.Object) *env {
	t.Helper()
	e := &env{t: t, wake: make(chan struct{}, 1), done: make(chan error, 1)}
	var kubeObjs, dynObjs []runtime.Object
	for _, o := range objs {
		if _, ok := o.(*unstructured.Unstructured); ok {
			dynObjs = append(dynObjs, o)
		} else {
			kubeObjs = append(kubeObjs, o)
		}
	}
	e.kube = fake.NewClientset(kubeObjs...)
	e.dyn = dynamicfake.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(),
		map[schema.GroupVersionResource]string{InferencePoolResource: "InferencePoolList"}, dynObjs...)
	return e
}

// start builds the Source from cfg and runs it until the test ends.
func (e *env) start(cfg Config) *Source {
	e.t.Helper()
	cfg.Client, cfg.Dynamic = e.kube, e.dyn
	cfg.Logger = slog.New(&wakeHandler{e: e})
	cfg.OnUpdate = func(string, discovery.OnlineList) { e.poke() }
	if cfg.Namespace == "" {
		cfg.Namespace = "ml"
	}
	src, err := New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	e.src = src
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	go func() { e.done <- src.Run(ctx) }()
	e.t.Cleanup(e.stop)
	return src
}

// stop ends Run and checks it returned nil: every informer, scrape and
// publisher goroutine has stopped.
func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Errorf("Run: %v", err)
		}
	case <-timer.C:
		e.t.Error("Run did not return within 30s of its context ending")
	}
}

func (e *env) poke() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// waitFor waits until cond holds, re-checking after every update or log
// record; it fails the test after 10 s.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-e.wake:
		case <-deadline.C:
			e.mu.Lock()
			logs := strings.Join(e.logs, "\n")
			e.mu.Unlock()
			e.t.Fatalf("%s: not within 10s\nlogs:\n%s", what, logs)
		}
	}
}

// waitList waits for a list of app that satisfies ok and returns it.
func (e *env) waitList(app, what string, ok func(discovery.OnlineList) bool) discovery.OnlineList {
	e.t.Helper()
	var got discovery.OnlineList
	e.waitFor(app+": "+what, func() bool {
		l, have := e.src.List(app)
		got = l
		return have && ok(l)
	})
	return got
}

func (e *env) logged(sub string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, l := range e.logs {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// wakeHandler is a slog.Handler that keeps every record as text.
type wakeHandler struct {
	e     *env
	attrs []slog.Attr
}

func (h *wakeHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *wakeHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	for _, a := range h.attrs {
		b.WriteString(" " + a.String())
	}
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	h.e.mu.Lock()
	h.e.logs = append(h.e.logs, b.String())
	h.e.mu.Unlock()
	h.e.poke()
	return nil
}
func (h *wakeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &wakeHandler{e: h.e, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}
func (h *wakeHandler) WithGroup(string) slog.Handler { return h }

// nodesByID indexes a list.
func nodesByID(l discovery.OnlineList) map[string]*discovery.Node {
	m := make(map[string]*discovery.Node, len(l.Nodes))
	for _, n := range l.Nodes {
		m[n.ID] = n
	}
	return m
}

// states renders a list as "id=state ..." in list (id) order.
func states(l discovery.OnlineList) string {
	var parts []string
	for _, n := range l.Nodes {
		parts = append(parts, n.ID+"="+n.State.String())
	}
	return strings.Join(parts, " ")
}

// Object builders.

type epSpec struct {
	pod         string
	ip          string
	ready       bool
	terminating bool
}

func slice(ns, name, svc string, ports map[string]int, eps ...epSpec) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
	}
	for n, p := range ports {
		s.Ports = append(s.Ports, discoveryv1.EndpointPort{Name: ptr(n), Port: ptr(int32(p))})
	}
	for _, ep := range eps {
		e := discoveryv1.Endpoint{
			Addresses:  []string{ep.ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr(ep.ready && !ep.terminating), Serving: ptr(ep.ready), Terminating: ptr(ep.terminating)},
		}
		if ep.pod != "" {
			e.TargetRef = &corev1.ObjectReference{Kind: "Pod", Namespace: ns, Name: ep.pod}
		}
		s.Endpoints = append(s.Endpoints, e)
	}
	return s
}

func pod(ns, name, ip string, ready bool, lbls, annotations map[string]string, ports ...corev1.ContainerPort) *corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: lbls, Annotations: annotations},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "engine", Image: "vllm/vllm-openai", Ports: ports}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip,
			Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}, {Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}},
	}
}

func pool(ns, name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "inference.networking.k8s.io/v1",
		"kind":       "InferencePool",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec":       spec,
	}}
}

func ptr[T any](v T) *T { return &v }
