package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
)

// InferencePoolResource is the Gateway API Inference Extension's
// InferencePool resource the source reads.
var InferencePoolResource = schema.GroupVersionResource{Group: "inference.networking.k8s.io", Version: "v1", Resource: "inferencepools"}

// listTimeout bounds one list call of an informer (watches are bounded by
// the server-side timeout the reflector asks for).
const listTimeout = time.Minute

// feedKind is the resource a feed watches.
type feedKind int

const (
	feedSlices feedKind = iota
	feedPods
	feedPools
)

var feedResources = [...]string{feedSlices: "endpointslices", feedPods: "pods", feedPools: "inferencepools"}

// feedKey identifies a feed; apps that need the same watch share it.
type feedKey struct {
	kind      feedKind
	namespace string
	// labels is the label selector sent to the API server; name, for
	// pools, selects one object by metadata.name.
	labels string
	name   string
}

func (k feedKey) String() string {
	s := feedResources[k.kind] + " in namespace " + k.namespace
	switch {
	case k.name != "":
		s += " named " + k.name
	case k.labels != "":
		s += " with labels " + k.labels
	}
	return s
}

// feed is one informer and the apps that read its cache.
type feed struct {
	key  feedKey                   // immutable
	inf  cache.SharedIndexInformer // immutable
	reg  cache.ResourceEventHandlerRegistration
	apps []*app // immutable once New returns

	mu     sync.Mutex
	err    error // guarded by mu: the current list or watch failure
	synced bool  // guarded by mu: the informer's first list was delivered
}

// state returns whether the feed has synced and its current error.
func (f *feed) state() (synced bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.synced, f.err
}

// feedFor returns the feed for k, creating it (not starting it) if new,
// and adds a to its readers.
func (s *Source) feedFor(k feedKey, a *app) *feed {
	f, ok := s.feeds[k]
	if !ok {
		f = &feed{key: k}
		f.inf = cache.NewSharedIndexInformerWithOptions(s.listWatch(f), exampleObject(k.kind), cache.SharedIndexInformerOptions{})
		if k.kind == feedPods {
			// Keep only what discovery reads: a namespace's pods are many
			// and their specs large.
			_ = f.inf.SetTransform(slimPod)
		}
		_ = f.inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
			if isRoutineWatchEnd(err) {
				return
			}
			s.observe(f, "watch", err)
		})
		reg, err := f.inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
			AddFunc: func(any) { s.feedChanged(f) },
			UpdateFunc: func(old, cur any) {
				if k.kind == feedPods && podUnchanged(old, cur) {
					return // a status change discovery does not read
				}
				s.feedChanged(f)
			},
			DeleteFunc: func(any) { s.feedChanged(f) },
		})
		if err != nil {
			panic("BUG: kubernetes: add handler to a new informer: " + err.Error())
		}
		f.reg = reg
		s.feeds[k] = f
	}
	f.apps = append(f.apps, a)
	return f
}

func exampleObject(k feedKind) runtime.Object {
	switch k {
	case feedSlices:
		return &discoveryv1.EndpointSlice{}
	case feedPods:
		return &corev1.Pod{}
	}
	return &unstructured.Unstructured{}
}

// listWatch lists and watches k's objects, recording every call's outcome
// so that the feed's apps are reported stale while the API server refuses
// or cannot be reached, and fresh again as soon as a call succeeds.
func (s *Source) listWatch(f *feed) cache.ListerWatcher {
	k := f.key
	tweak := func(o *metav1.ListOptions) {
		o.LabelSelector = k.labels
		if k.name != "" {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", k.name).String()
		}
	}
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			tweak(&o)
			ctx, cancel := context.WithTimeout(ctx, listTimeout)
			defer cancel()
			var obj runtime.Object
			var err error
			switch k.kind {
			case feedSlices:
				obj, err = s.client.DiscoveryV1().EndpointSlices(k.namespace).List(ctx, o)
			case feedPods:
				obj, err = s.client.CoreV1().Pods(k.namespace).List(ctx, o)
			default:
				obj, err = s.dynamic.Resource(InferencePoolResource).Namespace(k.namespace).List(ctx, o)
			}
			s.observe(f, "list", err)
			return obj, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			tweak(&o)
			var w watch.Interface
			var err error
			switch k.kind {
			case feedSlices:
				w, err = s.client.DiscoveryV1().EndpointSlices(k.namespace).Watch(ctx, o)
			case feedPods:
				w, err = s.client.CoreV1().Pods(k.namespace).Watch(ctx, o)
			default:
				w, err = s.dynamic.Resource(InferencePoolResource).Namespace(k.namespace).Watch(ctx, o)
			}
			s.observe(f, "watch", err)
			return w, err
		},
	}
	if k.kind == feedPools {
		return cache.ToListWatcherWithWatchListSemantics(lw, s.dynamic)
	}
	return cache.ToListWatcherWithWatchListSemantics(lw, s.client)
}

// isRoutineWatchEnd reports watch ends the reflector recovers from by
// itself without the view being out of date for long (as client-go's
// DefaultWatchErrorHandler treats them).
func isRoutineWatchEnd(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		apierrors.IsResourceExpired(err) || apierrors.IsGone(err) ||
		errors.Is(err, context.Canceled)
}

// observe records the outcome of a list or watch call: a failure marks
// the feed (and so its apps) stale and is logged once; the next success
// clears it and logs the recovery.
func (s *Source) observe(f *feed, op string, err error) {
	if err != nil && errors.Is(err, context.Canceled) {
		return // stopping
	}
	f.mu.Lock()
	was := f.err
	if err != nil {
		f.err = explain(f.key, op, err)
	} else {
		f.err = nil
	}
	now := f.err
	f.mu.Unlock()
	switch {
	case was == nil && now != nil:
		s.cfg.Logger.Warn("kubernetes: watch failing; keeping the last list of its apps, marked stale", "apps", appNames(f.apps), "err", now)
		s.feedChanged(f)
	case was != nil && now == nil:
		s.cfg.Logger.Info("kubernetes: watch recovered", "watch", f.key.String(), "apps", appNames(f.apps))
		s.feedChanged(f)
	}
}

// explain turns an API error into one that says what to do about it.
func explain(k feedKey, op string, err error) error {
	res := feedResources[k.kind]
	switch {
	case apierrors.IsForbidden(err):
		return fmt.Errorf("kubernetes: %s %s: forbidden: the gateway's service account needs get, list and watch on %s in namespace %q (the Helm chart's RBAC grants them in the namespaces it is given): %w", op, k, res, k.namespace, err)
	case apierrors.IsUnauthorized(err):
		return fmt.Errorf("kubernetes: %s %s: unauthorized: check the service account token or kubeconfig: %w", op, k, err)
	case apierrors.IsNotFound(err) && k.kind == feedPools:
		return fmt.Errorf("kubernetes: %s %s: the InferencePool API (%s) is not served: install the Gateway API Inference Extension CRDs: %w", op, k, InferencePoolResource.GroupResource(), err)
	}
	return fmt.Errorf("kubernetes: %s %s: %w", op, k, err)
}

func appNames(apps []*app) []string {
	out := make([]string, len(apps))
	for i, a := range apps {
		out[i] = a.cfg.App
	}
	return out
}

// slimPod is the pods informer's transform: it keeps the fields discovery
// reads (identity, labels, annotations, deletion, IP, phase, readiness,
// container ports) and drops the rest before the object is cached.
func slimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil // a tombstone: DeletedFinalStateUnknown
	}
	out := &corev1.Pod{
		TypeMeta: p.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Name: p.Name, Namespace: p.Namespace, UID: p.UID, ResourceVersion: p.ResourceVersion,
			Labels: p.Labels, Annotations: p.Annotations, DeletionTimestamp: p.DeletionTimestamp,
		},
		Status: corev1.PodStatus{Phase: p.Status.Phase, PodIP: p.Status.PodIP, PodIPs: p.Status.PodIPs},
	}
	for _, c := range p.Spec.Containers {
		if len(c.Ports) > 0 {
			out.Spec.Containers = append(out.Spec.Containers, corev1.Container{Name: c.Name, Ports: c.Ports})
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			out.Status.Conditions = []corev1.PodCondition{{Type: c.Type, Status: c.Status}}
		}
	}
	return out, nil
}

// podUnchanged reports whether two slimmed versions of a pod differ only
// in their resource version.
func podUnchanged(old, cur any) bool {
	o, ok1 := old.(*corev1.Pod)
	c, ok2 := cur.(*corev1.Pod)
	if !ok1 || !ok2 {
		return false
	}
	oc, cc := *o, *c
	oc.ResourceVersion, cc.ResourceVersion = "", ""
	return reflect.DeepEqual(&oc, &cc)
}
