package rayserve

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/switchyard-dev/switchyard/engines"
)

// ApplicationsPath is the dashboard's Serve REST path.
const ApplicationsPath = "/api/serve/applications/"

// Cluster is one Ray Serve cluster as the dashboard describes it.
type Cluster struct {
	// ControllerNodeID and ControllerNodeIP locate the Serve controller,
	// which runs on the head node.
	ControllerNodeID string `json:"controller_node_id,omitempty"`
	ControllerNodeIP string `json:"controller_node_ip,omitempty"`
	ProxyLocation    string `json:"proxy_location,omitempty"`
	HTTPPort         int    `json:"http_port"`
	GRPCPort         int    `json:"grpc_port,omitempty"`
	// GRPCServicers counts grpc_options.grpc_servicer_functions: Ray
	// starts no gRPC proxy without any, whatever the port.
	GRPCServicers int     `json:"grpc_servicers,omitempty"`
	Proxies       []Proxy `json:"proxies"`
	Apps          []App   `json:"applications"`
}

// Proxy is one Serve proxy (one per node with proxy_location EveryNode).
type Proxy struct {
	NodeID   string `json:"node_id"`
	NodeIP   string `json:"node_ip"`
	Status   string `json:"status"`
	HTTPAddr string `json:"http_addr"`
	GRPCAddr string `json:"grpc_addr,omitempty"`
}

// Healthy reports whether the proxy's status is HEALTHY.
func (p Proxy) Healthy() bool { return p.Status == "HEALTHY" }

// App is one Serve application.
type App struct {
	Name        string `json:"name"`
	RoutePrefix string `json:"route_prefix"`
	// HTTPRoute is false when route_prefix is null: the app is not
	// exposed over HTTP (or not yet propagated).
	HTTPRoute bool   `json:"http_route"`
	Status    string `json:"status"`
	// Ingress names the ingress deployment when the dashboard says
	// (deployment_topology, Ray 2.50+); "" when unknown.
	Ingress     string       `json:"ingress,omitempty"`
	Deployments []Deployment `json:"deployments"`
}

// Deployment is one deployment of an application.
type Deployment struct {
	Name               string  `json:"name"`
	Status             string  `json:"status"`
	NumReplicas        int     `json:"num_replicas"`
	MaxOngoingRequests int     `json:"max_ongoing_requests,omitempty"`
	NumCPUs            float64 `json:"num_cpus,omitempty"`
	NumGPUs            float64 `json:"num_gpus,omitempty"`
	// NPUs is the Ascend NPU count per replica (Ray resource "NPU").
	NPUs float64 `json:"npus,omitempty"`
	// AcceleratorType is ray_actor_options.accelerator_type (e.g. "H100",
	// "A10G"), the card model the replicas are pinned to, if any.
	AcceleratorType string    `json:"accelerator_type,omitempty"`
	Replicas        []Replica `json:"replicas"`
}

// Replica is one running replica actor.
type Replica struct {
	ReplicaID string `json:"replica_id"`
	NodeID    string `json:"node_id"`
	NodeIP    string `json:"node_ip"`
	State     string `json:"state"`
	PID       int    `json:"pid,omitempty"`
}

// Route is one place a request for an application can be sent: a
// healthy proxy on a node holding at least one RUNNING replica of it.
type Route struct {
	App         string `json:"app"`
	RoutePrefix string `json:"route_prefix"`
	NodeID      string `json:"node_id"`
	HTTPAddr    string `json:"http_addr"`
	GRPCAddr    string `json:"grpc_addr,omitempty"`
	// Replicas is the number of RUNNING replicas of the app on the node.
	Replicas int `json:"replicas"`
	// NPUs and GPUs are the accelerators those replicas hold.
	NPUs float64 `json:"npus,omitempty"`
	GPUs float64 `json:"gpus,omitempty"`
}

// Routes lists, per application, the healthy proxies on nodes running its
// replicas, sorted by app then node. Ray's proxy forwards to any replica,
// so routing to the proxy co-located with replicas keeps traffic local.
func (c Cluster) Routes() []Route {
	proxies := map[string]Proxy{}
	for _, p := range c.Proxies {
		if p.Healthy() {
			proxies[p.NodeID] = p
		}
	}
	var out []Route
	for _, a := range c.Apps {
		per := map[string]*Route{}
		for _, d := range a.Deployments {
			for _, r := range d.Replicas {
				if r.State != "RUNNING" {
					continue
				}
				p, ok := proxies[r.NodeID]
				if !ok {
					continue
				}
				rt := per[r.NodeID]
				if rt == nil {
					rt = &Route{App: a.Name, RoutePrefix: a.RoutePrefix, NodeID: r.NodeID, HTTPAddr: p.HTTPAddr, GRPCAddr: p.GRPCAddr}
					per[r.NodeID] = rt
				}
				rt.Replicas++
				rt.NPUs += d.NPUs
				rt.GPUs += d.NumGPUs
			}
		}
		for _, rt := range per {
			out = append(out, *rt)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].App != out[j].App {
			return out[i].App < out[j].App
		}
		return out[i].NodeID < out[j].NodeID
	})
	return out
}

// wire types: only the fields we read.
type wireApps struct {
	ControllerInfo *struct {
		NodeID string `json:"node_id"`
		NodeIP string `json:"node_ip"`
	} `json:"controller_info"`
	ProxyLocation string `json:"proxy_location"`
	HTTPOptions   *struct {
		Port *int `json:"port"`
	} `json:"http_options"`
	GRPCOptions *struct {
		Port     *int              `json:"port"`
		Servicer []json.RawMessage `json:"grpc_servicer_functions"`
	} `json:"grpc_options"`
	Proxies      map[string]wireProxy `json:"proxies"`
	Applications *map[string]wireApp  `json:"applications"`
}

type wireProxy struct {
	NodeID string `json:"node_id"`
	NodeIP string `json:"node_ip"`
	Status string `json:"status"`
}

type wireApp struct {
	Name        string                    `json:"name"`
	RoutePrefix *string                   `json:"route_prefix"`
	Status      string                    `json:"status"`
	Deployments map[string]wireDeployment `json:"deployments"`
	Topology    *struct {
		IngressDeployment *string `json:"ingress_deployment"`
		Nodes             map[string]struct {
			IsIngress bool `json:"is_ingress"`
		} `json:"nodes"`
	} `json:"deployment_topology"`
}

type wireDeployment struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Config struct {
		NumReplicas        *int `json:"num_replicas"`
		MaxOngoingRequests int  `json:"max_ongoing_requests"`
		ActorOptions       struct {
			NumCPUs         float64            `json:"num_cpus"`
			NumGPUs         float64            `json:"num_gpus"`
			Resources       map[string]float64 `json:"resources"`
			AcceleratorType string             `json:"accelerator_type"`
		} `json:"ray_actor_options"`
	} `json:"deployment_config"`
	Replicas []Replica `json:"replicas"`
}

// ParseApplications parses a GET /api/serve/applications/ body. Errors
// wrap engines.ErrMalformed and name the line, column or field.
func ParseApplications(r io.Reader) (Cluster, error) {
	data, err := io.ReadAll(io.LimitReader(r, engines.MaxInput+1))
	if err != nil {
		return Cluster{}, fmt.Errorf("rayserve: read applications: %w", err)
	}
	if len(data) > engines.MaxInput {
		return Cluster{}, fmt.Errorf("rayserve: applications: %w", engines.ErrTooLarge)
	}
	var w wireApps
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&w); err != nil {
		return Cluster{}, fmt.Errorf("rayserve: applications: %w", engines.JSONError(data, err))
	}
	if w.Applications == nil {
		return Cluster{}, fmt.Errorf("rayserve: applications: %w: field \"applications\" missing", engines.ErrMalformed)
	}
	c := Cluster{ProxyLocation: w.ProxyLocation, HTTPPort: 8000}
	if w.ControllerInfo != nil {
		c.ControllerNodeID, c.ControllerNodeIP = w.ControllerInfo.NodeID, w.ControllerInfo.NodeIP
	}
	if w.HTTPOptions != nil && w.HTTPOptions.Port != nil {
		c.HTTPPort = *w.HTTPOptions.Port
	}
	if w.GRPCOptions != nil && w.GRPCOptions.Port != nil {
		c.GRPCPort = *w.GRPCOptions.Port
	}
	if w.GRPCOptions != nil {
		c.GRPCServicers = len(w.GRPCOptions.Servicer)
	}
	if c.HTTPPort <= 0 || c.HTTPPort > 65535 || c.GRPCPort < 0 || c.GRPCPort > 65535 {
		return Cluster{}, fmt.Errorf("rayserve: applications: %w: port out of range (http %d, grpc %d)", engines.ErrMalformed, c.HTTPPort, c.GRPCPort)
	}
	for key, p := range w.Proxies {
		if p.NodeID == "" {
			p.NodeID = key
		}
		if p.NodeIP == "" {
			return Cluster{}, fmt.Errorf("rayserve: applications: %w: proxies.%s.node_ip missing", engines.ErrMalformed, key)
		}
		px := Proxy{NodeID: p.NodeID, NodeIP: p.NodeIP, Status: p.Status,
			HTTPAddr: net.JoinHostPort(p.NodeIP, strconv.Itoa(c.HTTPPort))}
		if c.GRPCPort > 0 {
			px.GRPCAddr = net.JoinHostPort(p.NodeIP, strconv.Itoa(c.GRPCPort))
		}
		c.Proxies = append(c.Proxies, px)
	}
	sort.Slice(c.Proxies, func(i, j int) bool { return c.Proxies[i].NodeID < c.Proxies[j].NodeID })
	for key, a := range *w.Applications {
		app := App{Name: a.Name, Status: a.Status}
		if app.Name == "" {
			app.Name = key
		}
		if a.RoutePrefix != nil {
			app.RoutePrefix, app.HTTPRoute = *a.RoutePrefix, true
		}
		if t := a.Topology; t != nil {
			if t.IngressDeployment != nil {
				app.Ingress = *t.IngressDeployment
			} else {
				for name, n := range t.Nodes {
					if n.IsIngress {
						app.Ingress = name
					}
				}
			}
		}
		for dk, d := range a.Deployments {
			dep := Deployment{Name: d.Name, Status: d.Status, MaxOngoingRequests: d.Config.MaxOngoingRequests,
				NumCPUs: d.Config.ActorOptions.NumCPUs, NumGPUs: d.Config.ActorOptions.NumGPUs,
				NPUs: d.Config.ActorOptions.Resources["NPU"], AcceleratorType: d.Config.ActorOptions.AcceleratorType}
			if dep.Name == "" {
				dep.Name = dk
			}
			if d.Config.NumReplicas != nil {
				dep.NumReplicas = *d.Config.NumReplicas
			} else {
				dep.NumReplicas = len(d.Replicas)
			}
			for i, r := range d.Replicas {
				if r.NodeID == "" || r.NodeIP == "" {
					return Cluster{}, fmt.Errorf("rayserve: applications: %w: applications.%s.deployments.%s.replicas[%d]: node_id/node_ip missing", engines.ErrMalformed, key, dk, i)
				}
				dep.Replicas = append(dep.Replicas, r)
			}
			app.Deployments = append(app.Deployments, dep)
		}
		sort.Slice(app.Deployments, func(i, j int) bool { return app.Deployments[i].Name < app.Deployments[j].Name })
		c.Apps = append(c.Apps, app)
	}
	sort.Slice(c.Apps, func(i, j int) bool { return c.Apps[i].Name < c.Apps[j].Name })
	return c, nil
}

// Discover GETs dashboard+ApplicationsPath (dashboard like
// "http://10.0.0.1:8265") and parses it. ctx without a deadline gets
// engines.DefaultTimeout; a nil client uses http.DefaultClient.
func Discover(ctx context.Context, client *http.Client, dashboard string) (Cluster, error) {
	if client == nil {
		client = http.DefaultClient
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, engines.DefaultTimeout)
		defer cancel()
	}
	url := strings.TrimSuffix(dashboard, "/") + ApplicationsPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Cluster{}, fmt.Errorf("rayserve: discover: %w", err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return Cluster{}, fmt.Errorf("rayserve: discover %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Cluster{}, fmt.Errorf("rayserve: discover %s: status %d", url, resp.StatusCode)
	}
	return ParseApplications(resp.Body)
}
