package sim

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"
)

// RayApplicationsPath is the dashboard's Serve REST path.
const RayApplicationsPath = "/api/serve/applications/"

// rayDashboard serves the dashboard; it can be stopped and restarted on
// the same address.
type rayDashboard struct {
	c    *RayCluster
	addr string

	mu  sync.Mutex
	srv *rayServer // guarded by mu; nil while down
}

func (c *RayCluster) startDashboard(ctx context.Context) (*rayDashboard, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", c.cfg.DashboardListen)
	if err != nil {
		return nil, fmt.Errorf("sim: ray dashboard: listen %s: %w", c.cfg.DashboardListen, err)
	}
	d := &rayDashboard{c: c, addr: l.Addr().String()}
	d.srv = newRayServer(l, http.HandlerFunc(d.handle))
	return d, nil
}

func (d *rayDashboard) stop() {
	d.mu.Lock()
	s := d.srv
	d.srv = nil
	d.mu.Unlock()
	if s != nil {
		s.close()
	}
}

func (d *rayDashboard) restart(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.srv != nil {
		return nil
	}
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", d.addr)
	if err != nil {
		return fmt.Errorf("sim: ray dashboard: listen again on %s: %w", d.addr, err)
	}
	d.srv = newRayServer(l, http.HandlerFunc(d.handle))
	return nil
}

// handle serves GET /api/serve/applications/ (also without the trailing
// slash) and the control endpoints under /_sim/ray/.
func (d *rayDashboard) handle(w http.ResponseWriter, r *http.Request) {
	c := d.c
	switch r.URL.Path {
	case RayApplicationsPath, "/api/serve/applications":
		if r.Method != http.MethodGet {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		if c.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+c.cfg.Token)) != 1 {
			http.Error(w, "Unauthorized: missing or invalid token", http.StatusUnauthorized)
			return
		}
		if code := int(c.dashStatus.Load()); code != 0 {
			http.Error(w, "simulated dashboard failure", code)
			return
		}
		b, _ := json.Marshal(c.details())
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(b)
		return
	}
	d.admin(w, r)
}

// admin serves the cluster's control endpoints (for the demo and manual
// tests):
//
//	GET  /_sim/ray/replicas[?app=A]               list replicas
//	POST /_sim/ray/replicas?app=A&node=N          add a replica
//	POST /_sim/ray/replicas/remove?id=ID          remove one (STOPPING, then gone)
//	POST /_sim/ray/replica-state?id=ID&state=S    STARTING, RUNNING, STOPPING, ...
//	POST /_sim/ray/proxy?node=N&status=S          HEALTHY, UNHEALTHY, DRAINING, ...; stopped; started
//	POST /_sim/ray/app-status?app=A&status=S      RUNNING, DEPLOYING, ...
//	POST /_sim/ray/dashboard?status=CODE          applications answer CODE (0: normal)
func (d *rayDashboard) admin(w http.ResponseWriter, r *http.Request) {
	c := d.c
	q := r.URL.Query()
	var err error
	post := r.Method == http.MethodPost
	switch {
	case r.URL.Path == "/_sim/ray/replicas" && r.Method == http.MethodGet:
	case r.URL.Path == "/_sim/ray/replicas" && post:
		var id string
		if id, err = c.AddReplica(r.Context(), q.Get("app"), q.Get("node")); err == nil {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]string{"id": id})
			return
		}
	case r.URL.Path == "/_sim/ray/replicas/remove" && post:
		ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
		defer cancel()
		err = c.RemoveReplica(ctx, q.Get("id"))
	case r.URL.Path == "/_sim/ray/replica-state" && post:
		err = c.SetReplicaState(q.Get("id"), q.Get("state"))
	case r.URL.Path == "/_sim/ray/proxy" && post:
		switch st := q.Get("status"); st {
		case "stopped":
			err = c.StopProxy(q.Get("node"))
		case "started":
			err = c.StartProxy(r.Context(), q.Get("node"))
		default:
			err = c.SetProxyStatus(q.Get("node"), st)
		}
	case r.URL.Path == "/_sim/ray/app-status" && post:
		err = c.SetAppStatus(q.Get("app"), q.Get("status"))
	case r.URL.Path == "/_sim/ray/dashboard" && post:
		code, perr := strconv.Atoi(q.Get("status"))
		if perr != nil || (code != 0 && (code < 400 || code > 599)) {
			http.Error(w, "status must be 0 or an HTTP error code 400..599", http.StatusBadRequest)
			return
		}
		c.SetDashboardStatus(code)
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(c.Replicas(q.Get("app")))
}

// details builds the ServeInstanceDetails document (the response schema
// of GET /api/serve/applications/, ray-project/ray
// python/ray/serve/schema.py: ServeInstanceDetails, ProxyDetails,
// ApplicationDetails, DeploymentDetails, ReplicaDetails,
// DeploymentTopology), in the shape of the dashboard's example response
// (engines/testdata/fixtures/rayserve/api-serve-applications-ray-docs.json).
func (c *RayCluster) details() map[string]any {
	c.mu.Lock()
	defer c.mu.Unlock()
	var head *rayNode
	for _, n := range c.nodes {
		if n.head {
			head = n
		}
	}
	actor := func(node *rayNode, name, log string) map[string]any {
		return map[string]any{"node_id": node.id, "node_ip": node.ip, "node_instance_id": "",
			"actor_id": fmt.Sprintf("%032x", len(name)*7919+len(node.id)), "actor_name": name,
			"worker_id": fmt.Sprintf("%056x", len(name)), "log_file_path": log}
	}
	proxies := map[string]any{}
	for _, n := range c.nodes {
		if n.proxyStatus == "" {
			continue
		}
		p := actor(n, "SERVE_CONTROLLER_ACTOR:SERVE_PROXY_ACTOR-"+n.id, "/serve/proxy_"+n.ip+".log")
		p["status"] = n.proxyStatus
		proxies[n.id] = p
	}
	apps := map[string]any{}
	for _, a := range c.apps {
		var reps []*rayReplica
		for _, r := range c.replicas {
			if r.app == a.cfg.Name {
				reps = append(reps, r)
			}
		}
		sort.Slice(reps, func(i, j int) bool { return reps[i].id < reps[j].id })
		replicas := []any{}
		for _, r := range reps {
			m := actor(c.node(r.nodeID), "SERVE_REPLICA::"+r.id, "/serve/replica_"+r.id+".log")
			m["replica_id"] = r.id
			m["state"] = r.state
			m["pid"] = r.pid
			m["start_time_s"] = float64(r.started.UnixNano()) / 1e9
			replicas = append(replicas, m)
		}
		opts := map[string]any{"num_cpus": 1.0}
		required := map[string]any{"CPU": 1.0}
		if a.cfg.NumGPUs > 0 {
			opts["num_gpus"] = a.cfg.NumGPUs
			required["GPU"] = a.cfg.NumGPUs
		}
		if a.cfg.NPUs > 0 {
			opts["resources"] = map[string]any{"NPU": a.cfg.NPUs}
			required["NPU"] = a.cfg.NPUs
		}
		if a.cfg.AcceleratorType != "" {
			opts["accelerator_type"] = a.cfg.AcceleratorType
			required["accelerator_type:"+a.cfg.AcceleratorType] = 0.001
		}
		dep := a.cfg.Deployment
		apps[a.cfg.Name] = map[string]any{
			"name": a.cfg.Name, "route_prefix": a.cfg.RoutePrefix, "docs_path": nil, "status": a.status, "message": "",
			"last_deployed_time_s": float64(a.deployed.UnixNano()) / 1e9,
			"deployed_app_config":  map[string]any{"name": a.cfg.Name, "route_prefix": a.cfg.RoutePrefix, "import_path": "switchyard.sim:app"},
			"source":               "declarative",
			"deployments": map[string]any{dep: map[string]any{
				"name": dep, "status": "HEALTHY", "status_trigger": "CONFIG_UPDATE_COMPLETED", "message": "",
				"deployment_config": map[string]any{"name": dep, "num_replicas": len(reps), "max_ongoing_requests": a.cfg.MaxOngoingRequests,
					"user_config": nil, "graceful_shutdown_wait_loop_s": 2.0, "graceful_shutdown_timeout_s": 20.0,
					"health_check_period_s": 10.0, "health_check_timeout_s": 30.0, "ray_actor_options": opts},
				"target_num_replicas": len(reps), "required_resources": required, "replicas": replicas,
			}},
			"external_scaler_enabled": false,
			"deployment_topology": map[string]any{"app_name": a.cfg.Name, "ingress_deployment": dep,
				"nodes": map[string]any{dep: map[string]any{"name": dep, "app_name": a.cfg.Name, "outbound_deployments": []any{}, "is_ingress": true}}},
		}
	}
	return map[string]any{
		"controller_info": actor(head, "SERVE_CONTROLLER_ACTOR", "/serve/controller.log"),
		"proxy_location":  c.cfg.ProxyLocation,
		"http_options":    map[string]any{"host": "0.0.0.0", "port": c.httpPort, "root_path": "", "request_timeout_s": nil, "keep_alive_timeout_s": 5},
		"grpc_options":    map[string]any{"port": 9000, "grpc_servicer_functions": []any{}, "request_timeout_s": nil},
		"proxies":         proxies,
		"deploy_mode":     "MULTI_APP",
		"applications":    apps,
		"target_capacity": nil,
		"target_groups":   []any{},
	}
}
