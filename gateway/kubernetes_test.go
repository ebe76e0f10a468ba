package gateway

import (
	"context"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/switchyard-dev/switchyard/discovery/kubernetes"
	"github.com/switchyard-dev/switchyard/engines/sim"
)

// endpointSlice is one pod's EndpointSlice of Service vllm in ml: each
// pod listens on a port of its own here (the pods are sim nodes on
// loopback), so each gets a slice, as pods whose named port resolves to
// different numbers do.
func endpointSlice(pod, addr string, ready, terminating bool) *discoveryv1.EndpointSlice {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	name, num := "http", int32(p)
	return &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "vllm-" + pod, Namespace: "ml", Labels: map[string]string{discoveryv1.LabelServiceName: "vllm"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: &name, Port: &num}},
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{host},
			Conditions: discoveryv1.EndpointConditions{Ready: new(ready && !terminating), Serving: new(ready), Terminating: new(terminating)},
			TargetRef:  &corev1.ObjectReference{Kind: "Pod", Namespace: "ml", Name: pod},
		}},
	}
}

// TestKubernetesSource: a route fed by the kubernetes block, through
// client-go's fake clientset and real informers: endpoints that appear,
// terminate and go reach the gateway's table within 1 s of the API
// change, and requests go to the ready ones (sim nodes on loopback).
func TestKubernetesSource(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	engine := func(id string) *sim.Node {
		n, err := sim.Start(ctx, sim.Config{ID: id, Listen: "127.0.0.1:0", Model: "llm", Override: rayReplica.Override})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = n.Close() })
		return n
	}
	a, b := engine("pod-a"), engine("pod-b")
	kube := fake.NewClientset()

	cfg := testConfig(RouteConfig{Name: "llm", Match: MatchConfig{Models: []string{"llm"}}})
	cfg.Kubernetes = &kubernetes.Config{Namespace: "ml", Apps: []kubernetes.AppConfig{{App: "llm", Service: "vllm", Port: "http"}}}
	g, err := New(cfg, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithKubernetesClients(kube, nil))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gw := serveOn(t, g, cl)
	if src := g.core.Routes().Route("llm").Config().Source; src != SourceKubernetes {
		t.Fatalf("route source %q, want kubernetes (implied by the kubernetes block)", src)
	}
	eps := kube.DiscoveryV1().EndpointSlices("ml")
	table := func() ([]string, int) {
		r := g.core.Routes().Route("llm")
		return eligible(r), r.Table().Len()
	}
	// step applies one API change and waits until the gateway's table
	// has exactly want as routing targets and n nodes (draining ones
	// included); it returns how long that took.
	step := func(what string, change func() error, n int, want ...string) time.Duration {
		t.Helper()
		start := time.Now()
		if err := change(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		waitFor(t, 5*time.Second, what, func() bool {
			ids, l := table()
			return l == n && equalIDs(ids, want)
		})
		d := time.Since(start)
		// How soon is a measurement, not a test condition (the issue's
		// 1 s is met by reacting to the watch event, no polling): logged.
		t.Logf("%s: in the gateway's table %v after the API change", what, d)
		return d
	}
	served := func(n int) map[string]int {
		seen := map[string]int{}
		c := testClient()
		for range n {
			resp, body := post(t, c, gw.url("/v1/chat/completions"), `{"model":"llm","messages":[{"role":"user","content":"hi"}]}`)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			seen[resp.Header.Get(sim.NodeHeader)]++
		}
		return seen
	}

	step("pod-a ready", func() error {
		_, err := eps.Create(ctx, endpointSlice("pod-a", a.Addr(), true, false), metav1.CreateOptions{})
		return err
	}, 1, "ml/pod-a")
	if s := served(10); s["pod-a"] != 10 {
		t.Fatalf("served by %v, want pod-a only", s)
	}
	step("pod-b ready", func() error {
		_, err := eps.Create(ctx, endpointSlice("pod-b", b.Addr(), true, false), metav1.CreateOptions{})
		return err
	}, 2, "ml/pod-a", "ml/pod-b")
	if s := served(40); s["pod-a"] == 0 || s["pod-b"] == 0 {
		t.Fatalf("served by %v, want both pods", s)
	}
	// Terminating: no new requests, but it stays in the table (draining)
	// while its in-flight requests finish.
	step("pod-a terminating", func() error {
		_, err := eps.Update(ctx, endpointSlice("pod-a", a.Addr(), true, true), metav1.UpdateOptions{})
		return err
	}, 2, "ml/pod-b")
	if s := served(20); s["pod-b"] != 20 {
		t.Fatalf("served by %v with pod-a terminating, want pod-b only", s)
	}
	step("pod-a gone", func() error { return eps.Delete(ctx, "vllm-pod-a", metav1.DeleteOptions{}) }, 1, "ml/pod-b")
	if ar := adminRoutes(t, gw)["llm"]; ar.Source != "kubernetes" || ar.Stale {
		t.Fatalf("/admin/routes: %+v", ar)
	}
}

func equalIDs(got, want []string) bool {
	w := slices.Clone(want)
	slices.Sort(w)
	return slices.Equal(got, w)
}

// TestKubernetesReloadWhileWatching: reloads while the source publishes
// lists complete, and the route ends with the last list. (The source
// delivers lists holding its own lock; the gateway never calls into a
// source under the feed's lock, so the two cannot wait on each other.
// The window of such a deadlock is narrow: this test guards the path, it
// does not reliably catch a regression.)
func TestKubernetesReloadWhileWatching(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	a, err := sim.Start(ctx, sim.Config{ID: "pod-a", Listen: "127.0.0.1:0", Model: "llm", Override: rayReplica.Override})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	kube := fake.NewClientset()
	be := backend(t, "static", nil)
	conf := func(i int) *Config {
		c := testConfig(RouteConfig{Name: "llm", Match: MatchConfig{Models: []string{"llm"}}}, staticRoute("m"+strconv.Itoa(i), be.URL))
		c.Kubernetes = &kubernetes.Config{Namespace: "ml", Apps: []kubernetes.AppConfig{{App: "llm", Service: "vllm", Port: "http"}}}
		return c
	}
	g, err := New(conf(0), WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithKubernetesClients(kube, nil))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveOn(t, g, cl)
	eps := kube.DiscoveryV1().EndpointSlices("ml")
	if _, err := eps.Create(ctx, endpointSlice("pod-a", a.Addr(), true, false), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	churned := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < 200 && err == nil; i++ {
			_, err = eps.Update(ctx, endpointSlice("pod-a", a.Addr(), true, i%2 == 0), metav1.UpdateOptions{})
		}
		if err == nil {
			_, err = eps.Update(ctx, endpointSlice("pod-a", a.Addr(), true, false), metav1.UpdateOptions{})
		}
		churned <- err
	}()
	for i := 1; i <= 50; i++ {
		if err := g.Reload(conf(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-churned; err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the last list (pod-a ready) in the table", func() bool {
		return equalIDs(eligible(g.core.Routes().Route("llm")), []string{"ml/pod-a"})
	})
}
