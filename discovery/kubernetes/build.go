package kubernetes

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	giev1 "sigs.k8s.io/gateway-api-inference-extension/api/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/discovery/scrape"
	"github.com/switchyard-dev/switchyard/engines"
)

// endpoint is one node as read from the cluster, before it becomes a
// discovery.Node.
type endpoint struct {
	id       string
	ip       string // for ranking duplicates: IPv4 preferred
	http     string // host:port, or ""
	grpc     string // host:port, or ""
	state    discovery.State
	engine   string
	accel    discovery.Accelerator
	capacity float64
	metrics  scrape.Target // zero when not scraped
}

// newNode is the one place this source builds a discovery.Node. Load is
// the last scrape's when it succeeded; otherwise the load is unknown (the
// zero Load, SampledAt zero). Utilisation is the engine's KV-cache usage:
// without an agent there is no accelerator telemetry, and for engines with
// continuous batching it tracks load better than busy time anyway (see
// discovery/agent ProbeSource.UtilFromKVCache).
func newNode(app string, ep *endpoint, res scrape.Result, now time.Time) *discovery.Node {
	n := &discovery.Node{
		ID: ep.id, App: app, Addresses: make(map[string]string, 2), Engine: ep.engine,
		Accelerator: ep.accel, Capacity: ep.capacity, State: ep.state, LastHeard: now,
	}
	if ep.http != "" {
		n.Addresses["http"] = ep.http
	}
	if ep.grpc != "" {
		n.Addresses["grpc"] = ep.grpc
	}
	if res.Fresh() {
		l := res.Load
		n.Load = discovery.Load{
			Utilisation:  known(l.KVCache, 1),
			Concurrency:  known(l.Concurrency(), discovery.MaxConcurrency),
			Running:      known(l.Running, discovery.MaxQueue),
			Waiting:      known(l.Waiting, discovery.MaxQueue),
			KVCacheUsage: known(l.KVCache, 1),
			// Prefix-cache counters, hit rate and LoRA adapters calibrate
			// the gateway's affinity (issue 14).
			PrefixCacheHits:    known(l.PrefixCacheHits, discovery.MaxCounter),
			PrefixCacheQueries: known(l.PrefixCacheQueries, discovery.MaxCounter),
			PrefixCacheHitRate: known(l.PrefixCacheHitRate, 1),
			SampledAt:          res.At,
		}
		if l.LoRA != nil {
			n.Load.LoRA, _ = discovery.AdaptersOf(l.LoRA.Running, l.LoRA.Waiting)
		}
		switch l.Sleep {
		case engines.SleepAsleep:
			n.Load.Readiness = discovery.ReadinessAsleep
		case engines.SleepAwake:
			n.Load.Readiness = discovery.ReadinessReady
		}
	}
	return n
}

// known carries an engine value into discovery, clamped to 0..max;
// unknown stays unknown.
func known(v engines.Value, max float64) discovery.Value {
	f, ok := v.Get()
	if !ok {
		return discovery.Unknown
	}
	return discovery.Known(clamp(f, 0, max))
}

// sameNode reports whether two nodes differ only in Version and LastHeard.
func sameNode(a, b *discovery.Node) bool {
	return a.ID == b.ID && a.App == b.App && a.Engine == b.Engine && a.Accelerator == b.Accelerator &&
		a.Capacity == b.Capacity && a.State == b.State && a.Load == b.Load && maps.Equal(a.Addresses, b.Addresses)
}

func clamp(v, lo, hi float64) float64 { return min(max(v, lo), hi) }

// endpoints reads a's endpoints from the informer caches, sorted by id.
// Endpoints that cannot be used (no matching port) are left out and
// logged once each; an error means the list cannot be built at all.
func (s *Source) endpoints(a *app) ([]*endpoint, error) {
	byID := make(map[string]*endpoint)
	add := func(ep *endpoint) {
		if old, ok := byID[ep.id]; ok && !better(ep, old) {
			return
		}
		byID[ep.id] = ep
	}
	for _, ns := range a.cfg.Namespaces {
		nf := a.byNS[ns]
		var err error
		switch a.cfg.kind() {
		case kindService:
			s.serviceEndpoints(a, ns, nf, add)
		case kindPods:
			s.podEndpoints(a, ns, nf, add)
		case kindPool:
			err = s.poolEndpoints(a, ns, nf, add)
		}
		if err != nil {
			return nil, err
		}
	}
	out := make([]*endpoint, 0, len(byID))
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		out = append(out, byID[id])
	}
	return out, nil
}

// better ranks two reports of the same endpoint (an endpoint may sit in
// two slices during an update, or in an IPv4 and an IPv6 slice): a target
// over a non-target, then IPv4 over IPv6.
func better(a, b *endpoint) bool {
	if a.state.Target() != b.state.Target() {
		return a.state.Target()
	}
	return is4(a.ip) && !is4(b.ip)
}

func is4(ip string) bool {
	addr, err := netip.ParseAddr(ip)
	return err == nil && addr.Is4()
}

// warnOnce logs an endpoint problem once per app and key (the publisher
// goroutine owns a.warned).
func (s *Source) warnOnce(a *app, key, msg string, args ...any) {
	if a.warned[key] {
		return
	}
	if len(a.warned) > 10000 {
		clear(a.warned) // bounded: a churning namespace must not grow it forever
	}
	a.warned[key] = true
	s.cfg.Logger.Warn("kubernetes: "+msg, append([]any{"app", a.cfg.App}, args...)...)
}

// serviceEndpoints adds the endpoints of a's Service in ns.
func (s *Source) serviceEndpoints(a *app, ns string, nf nsFeeds, add func(*endpoint)) {
	for _, obj := range nf.slices.inf.GetStore().List() {
		sl, ok := obj.(*discoveryv1.EndpointSlice)
		if !ok || sl.Labels[discoveryv1.LabelServiceName] != a.cfg.Service {
			continue
		}
		if sl.AddressType == discoveryv1.AddressTypeFQDN {
			continue
		}
		httpPort, okH := slicePort(sl.Ports, a.cfg.Port)
		grpcPort, okG := 0, false
		if a.cfg.GRPCPort != "" {
			grpcPort, okG = slicePort(sl.Ports, a.cfg.GRPCPort)
		}
		if !okH && !okG {
			s.warnOnce(a, "slice/"+ns+"/"+sl.Name, "EndpointSlice has no port the app names; its endpoints are left out",
				"slice", ns+"/"+sl.Name, "port", a.cfg.Port, "ports", portNames(sl.Ports))
			continue
		}
		for _, e := range sl.Endpoints {
			if len(e.Addresses) == 0 {
				continue
			}
			ip := e.Addresses[0]
			ep := &endpoint{ip: ip, state: sliceState(e.Conditions)}
			var pod *corev1.Pod
			if r := e.TargetRef; r != nil && r.Kind == "Pod" {
				ep.id = ns + "/" + r.Name
				pod = cachedPod(nf.pods, ns, r.Name)
			} else {
				ep.id = ns + "/" + ip
			}
			if okH {
				ep.http = net.JoinHostPort(ip, strconv.Itoa(httpPort))
			}
			if okG {
				ep.grpc = net.JoinHostPort(ip, strconv.Itoa(grpcPort))
			}
			s.finish(a, ep, pod, httpPort)
			add(ep)
		}
	}
}

// sliceState maps endpoint conditions: terminating → draining (in-flight
// requests finish), ready → ready, not ready → draining (listed, not a
// target). Nil conditions read as the API documents: ready, not
// terminating.
func sliceState(c discoveryv1.EndpointConditions) discovery.State {
	switch {
	case c.Terminating != nil && *c.Terminating:
		return discovery.StateDraining
	case c.Ready == nil || *c.Ready:
		return discovery.StateReady
	}
	return discovery.StateDraining
}

// slicePort finds want (a port name or number) among a slice's ports;
// empty want takes the only port.
func slicePort(ports []discoveryv1.EndpointPort, want string) (int, bool) {
	if want == "" {
		if len(ports) == 1 && ports[0].Port != nil {
			return int(*ports[0].Port), true
		}
		return 0, false
	}
	n, numErr := strconv.Atoi(want)
	for _, p := range ports {
		if p.Port == nil {
			continue
		}
		if (p.Name != nil && *p.Name == want) || (numErr == nil && int(*p.Port) == n) {
			return int(*p.Port), true
		}
	}
	return 0, false
}

func portNames(ports []discoveryv1.EndpointPort) []string {
	var out []string
	for _, p := range ports {
		name := ""
		if p.Name != nil {
			name = *p.Name
		}
		num := 0
		if p.Port != nil {
			num = int(*p.Port)
		}
		out = append(out, fmt.Sprintf("%s:%d", name, num))
	}
	return out
}

func cachedPod(f *feed, ns, name string) *corev1.Pod {
	if f == nil {
		return nil
	}
	obj, ok, err := f.inf.GetStore().GetByKey(ns + "/" + name)
	if err != nil || !ok {
		return nil
	}
	p, _ := obj.(*corev1.Pod)
	return p
}

// podEndpoints adds the pods a's selector matches in ns.
func (s *Source) podEndpoints(a *app, ns string, nf nsFeeds, add func(*endpoint)) {
	for _, p := range s.pods(nf.pods, ns, a.selector) {
		port, ok := podPort(p, a.cfg.Port)
		grpcPort, okG := 0, false
		if a.cfg.GRPCPort != "" {
			grpcPort, okG = podPort(p, a.cfg.GRPCPort)
		}
		if !ok && !okG {
			s.warnOnce(a, "pod/"+ns+"/"+p.Name, "pod has no port the app names (set port: to a container port name or number); left out",
				"pod", ns+"/"+p.Name, "port", a.cfg.Port)
			continue
		}
		ep := &endpoint{id: ns + "/" + p.Name, ip: p.Status.PodIP, state: podState(p)}
		if ok {
			ep.http = net.JoinHostPort(p.Status.PodIP, strconv.Itoa(port))
		}
		if okG {
			ep.grpc = net.JoinHostPort(p.Status.PodIP, strconv.Itoa(grpcPort))
		}
		s.finish(a, ep, p, port)
		add(ep)
	}
}

// pods returns the cached pods of ns that sel matches (nil sel: all) and
// that can be reached: they have an IP and have not finished.
func (s *Source) pods(f *feed, ns string, sel labels.Selector) []*corev1.Pod {
	var out []*corev1.Pod
	for _, obj := range f.inf.GetStore().List() {
		p, ok := obj.(*corev1.Pod)
		if !ok || p.Namespace != ns || (sel != nil && !sel.Matches(labels.Set(p.Labels))) {
			continue
		}
		if p.Status.PodIP == "" || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		out = append(out, p)
	}
	return out
}

// podState: a pod being deleted is draining, a Ready one ready, any other
// draining (listed, not a target).
func podState(p *corev1.Pod) discovery.State {
	if p.DeletionTimestamp != nil {
		return discovery.StateDraining
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return discovery.StateReady
		}
	}
	return discovery.StateDraining
}

// podPort resolves want (a container port name or a number) on p; empty
// want takes the only declared container port.
func podPort(p *corev1.Pod, want string) (int, bool) {
	if n, err := strconv.Atoi(want); err == nil {
		return n, true
	}
	var only []int
	for _, c := range p.Spec.Containers {
		for _, cp := range c.Ports {
			if want != "" && cp.Name == want {
				return int(cp.ContainerPort), true
			}
			only = append(only, int(cp.ContainerPort))
		}
	}
	if want == "" && len(only) == 1 {
		return only[0], true
	}
	return 0, false
}

// poolEndpoints adds the pods of a's InferencePool in ns, one endpoint per
// pod and target port. A pool whose spec cannot be decoded strictly
// (fields this version does not know) is an error: its meaning is unknown.
func (s *Source) poolEndpoints(a *app, ns string, nf nsFeeds, add func(*endpoint)) error {
	obj, ok, _ := nf.pools.inf.GetStore().GetByKey(ns + "/" + a.cfg.InferencePool)
	if !ok {
		s.warnOnce(a, "pool/"+ns, "InferencePool not found; the app has no nodes in its namespace until it exists",
			"inference_pool", ns+"/"+a.cfg.InferencePool)
		return nil
	}
	delete(a.warned, "pool/"+ns)
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return fmt.Errorf("kubernetes: inferencepool %s/%s: unexpected cached type %T", ns, a.cfg.InferencePool, obj)
	}
	spec, err := decodePoolSpec(u)
	if err != nil {
		return err
	}
	sel := labels.SelectorFromSet(matchLabels(spec.Selector))
	if len(spec.Selector.MatchLabels) == 0 || len(spec.TargetPorts) == 0 {
		return fmt.Errorf("kubernetes: inferencepool %s/%s: spec.selector.matchLabels and spec.targetPorts are required", ns, a.cfg.InferencePool)
	}
	h2c := spec.AppProtocol == giev1.AppProtocolH2C
	for _, p := range s.pods(nf.pods, ns, sel) {
		for _, tp := range spec.TargetPorts {
			port := int(tp.Number)
			ep := &endpoint{id: ns + "/" + p.Name, ip: p.Status.PodIP, state: podState(p)}
			if len(spec.TargetPorts) > 1 {
				ep.id += ":" + strconv.Itoa(port)
			}
			hp := net.JoinHostPort(p.Status.PodIP, strconv.Itoa(port))
			httpPort := port
			if h2c {
				ep.grpc, httpPort = hp, 0
			} else {
				ep.http = hp
			}
			s.finish(a, ep, p, httpPort)
			add(ep)
		}
	}
	return nil
}

// decodePoolSpec decodes an InferencePool's spec strictly into the Gateway
// API Inference Extension's own v1 type: an unknown field, a duplicate or
// a value of the wrong type is an error naming the field. (Metadata and
// status are not read.)
func decodePoolSpec(u *unstructured.Unstructured) (giev1.InferencePoolSpec, error) {
	var spec giev1.InferencePoolSpec
	fail := func(err error) (giev1.InferencePoolSpec, error) {
		return giev1.InferencePoolSpec{}, fmt.Errorf("kubernetes: inferencepool %s/%s: spec: %w", u.GetNamespace(), u.GetName(), err)
	}
	raw, ok := u.Object["spec"].(map[string]any)
	if !ok {
		return fail(errors.New("missing"))
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return fail(err)
	}
	strict, err := sigsjson.UnmarshalStrict(b, &spec, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return fail(err)
	}
	if len(strict) > 0 {
		return fail(errors.Join(strict...))
	}
	return spec, nil
}

func matchLabels(sel giev1.LabelSelector) labels.Set {
	out := make(labels.Set, len(sel.MatchLabels))
	for k, v := range sel.MatchLabels {
		out[string(k)] = string(v)
	}
	return out
}

// finish fills what every kind of endpoint shares: engine, capacity (from
// the pod, else the app's defaults) and the metrics target.
func (s *Source) finish(a *app, ep *endpoint, pod *corev1.Pod, httpPort int) {
	ep.engine = a.cfg.Engine
	model, cards := a.cfg.Accelerator, a.cfg.Cards
	if pod != nil {
		if m := podMeta(pod, AnnotationAccelerator); m != "" {
			if len(m) > discovery.MaxNameLen {
				s.warnOnce(a, "accel/"+pod.Namespace+"/"+pod.Name, "pod's accelerator annotation is too long; using the app's default",
					"pod", pod.Namespace+"/"+pod.Name, "annotation", AnnotationAccelerator)
			} else {
				model = m
			}
		}
		if c := podMeta(pod, AnnotationCards); c != "" {
			n, err := strconv.Atoi(c)
			if err != nil || n < 0 || n > discovery.MaxCards {
				s.warnOnce(a, "cards/"+pod.Namespace+"/"+pod.Name, "pod's card count is not an integer in [0, 4096]; using the app's default",
					"pod", pod.Namespace+"/"+pod.Name, "annotation", AnnotationCards, "value", c)
			} else {
				cards = n
			}
		}
	}
	ep.accel = discovery.Accelerator{Model: model, Count: cards}
	switch {
	case cards > 0:
		c := s.cfg.Capacity.ForCards(model, float64(cards))
		if c.Warning != "" {
			s.warnOnce(a, "model/"+model, c.Warning)
		}
		ep.capacity = min(c.Value, discovery.MaxCapacity)
	default:
		ep.capacity = a.cfg.Capacity
	}
	if a.cfg.Engine == "" || !ep.state.Target() {
		return
	}
	ad, err := engines.Lookup(a.cfg.Engine)
	if err != nil {
		return // checked by Validate
	}
	spec := ad.Spec()
	port := a.cfg.MetricsPort
	if port == 0 {
		port = spec.MetricsPort
	}
	if port == 0 {
		port = httpPort
	}
	if port == 0 {
		return
	}
	path := a.cfg.MetricsPath
	if path == "" {
		path = spec.MetricsPath
	}
	if path == "" {
		path = "/metrics"
	}
	ep.metrics = scrape.Target{URL: "http://" + net.JoinHostPort(ep.ip, strconv.Itoa(port)) + path, Engine: a.cfg.Engine}
}

// podMeta reads key from the pod's annotations, else its labels.
func podMeta(p *corev1.Pod, key string) string {
	if v, ok := p.Annotations[key]; ok {
		return v
	}
	return p.Labels[key]
}
