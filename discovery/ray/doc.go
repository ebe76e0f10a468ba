// Package ray is a discovery source for Ray Serve: given only a Ray
// dashboard, it keeps one online list per Serve application, whose nodes
// are the Serve HTTP proxies to route that application's requests to
// (issue 13, "Ray Serve as a backend").
//
// # What it reads
//
// Every Config.Refresh (default 1 s, at most 2 s) it GETs
// /api/serve/applications/ from the dashboard (each request bounded by
// Config.Timeout; with a token, Config.TokenHeader carries it) and parses
// it with engines/rayserve. For each application:
//
//   - Counted replicas are the RUNNING replicas of its ingress deployment
//     when the dashboard names it (deployment_topology, Ray 2.50+), else of
//     all its deployments. STARTING, UPDATING, RECOVERING, STOPPING and
//     PENDING_MIGRATION replicas do not count.
//   - proxy_location EveryNode (and unknown values): one node per Ray node
//     that hosts counted replicas and whose proxy is HEALTHY; its
//     addresses are the proxy's, "http" = node_ip:http_options.port and,
//     when the cluster has gRPC servicer functions (else Ray runs no gRPC
//     proxy), "grpc" = node_ip:grpc_options.port. Proxies that are not
//     HEALTHY (STARTING, UNHEALTHY, DRAINING, DRAINED) are excluded. If no
//     node with replicas has a healthy proxy, the app is routed through
//     every healthy proxy, sharing its capacity (any Ray proxy forwards to
//     any replica).
//   - HeadOnly: one node, the head's proxy (the proxy on the controller's
//     node, or the only proxy), with the whole app's capacity.
//   - Disabled: no node (logged once).
//
// The node's Capacity is Σ over its counted replicas of units ×
// coefficient: units are the replica's GPUs plus NPUs
// (ray_actor_options.num_gpus and resources.NPU), or 1 for a replica
// without accelerators (coefficient 1: replicas weigh equally). The
// coefficient of an accelerated replica comes from engines/capacity for
// the card model given by Config.Accelerators (node id, then node IP),
// else the deployment's ray_actor_options.accelerator_type. When the model
// is unknown (neither given, or not in the table) the table's default
// coefficient is used, so nodes weigh by card count, and a warning is
// logged once per deployment or model. Accelerator is {model, cards}.
//
// With Config.MetricsPort set, each poll also reads every node's metrics
// export endpoint (node_ip:MetricsPort/metrics) and sets the node's Load:
// Running = Σ ray_serve_replica_processing_queries (requests the app's
// replicas on that node are processing), Waiting = Σ
// ray_serve_deployment_queued_queries (requests queued for the app in that
// node's proxy router), both for the app (and its ingress deployment when
// known); see nodes.go for the sources of the names. For HeadOnly,
// Running sums every node's replicas and Waiting is the head's queue. A
// node whose scrape fails, or no MetricsPort, leaves Load zero with
// SampledAt zero: unknown.
//
// # What it delivers
//
// OnUpdate gets every new version of an app's list, only when something
// changed (nodes, addresses, capacity, accelerators, load); unchanged
// nodes are shared between versions and keep their Version. An app that
// leaves the dashboard gets an empty list, then is forgotten. OnApps gets
// the application set (name, route_prefix, status) when it changes;
// Application.Routable (RUNNING with an HTTP route prefix) tells the
// gateway which to route. Lists exist for every app, whatever its status.
//
// When the dashboard is unreachable or answers badly, the last view is
// kept, marked stale (Stale, Status().Stale), a warning is logged once and
// the recovery at info; Status counts polls and failures for the
// gateway's metrics. The token is never logged (Config.LogValue redacts
// it, errors never contain it).
//
// # Wiring
//
//	src, err := ray.New(ray.Config{Dashboard: "http://10.0.0.1:8265",
//		OnApps:   func(apps []ray.Application) { /* one route per a.Routable() by a.RoutePrefix */ },
//		OnUpdate: func(app string, l discovery.OnlineList) { /* hand l to the route's owner */ }})
//	go src.Run(ctx)      // or src.Refresh(ctx) once first, to start with a view
//	l, ok := src.List("llm"); src.Stale("llm"); src.Applications(); src.Status()
//
// The package owns the polling and the mapping from Ray's view to online
// lists; it must never import gateway or balancer. A Source is safe for
// concurrent use; callbacks are serialised.
package ray
