// Package kubernetes is a discovery source that reads an application's
// nodes from the Kubernetes API instead of from agents: the EndpointSlices
// of a Service, the Pods that match a label selector, or the Pods of a
// Gateway API Inference Extension InferencePool
// (inference.networking.k8s.io/v1), in one namespace or several.
//
// It owns the client-go informers it starts (one per namespace and kind,
// shared by the apps that read them), turning their caches into
// [discovery.OnlineList] versions, and, for apps that name an engine, the
// agentless load scrapes of their endpoints (discovery/scrape). The
// mapping is:
//
//   - a ready endpoint (or Ready pod) is a node in state ready;
//   - a terminating endpoint (or a pod being deleted), and one that is not
//     ready, is listed as draining: not a routing target, while its
//     in-flight requests finish;
//   - an endpoint that is removed is gone from the next list.
//
// Every watch event is delivered through Config.OnUpdate as soon as the
// informer hands it over (no polling); load-only changes from the scrapes
// are coalesced (Config.LoadCoalesce). Capacity comes from the pod's
// switchyard.dev/accelerator and switchyard.dev/cards annotations (or
// labels) through engines/capacity, else from the app's defaults.
//
// It never empties a view because the API server is unreachable or
// refuses a watch (a namespace without permission, say): the informers
// keep their last cache, the app is reported stale, and the failure is
// logged at warning level once, its recovery at info. It never writes to
// the API server.
//
// A [Source] is safe for concurrent use. Lists handed to OnUpdate and
// returned by List are immutable snapshots.
package kubernetes
