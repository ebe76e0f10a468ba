package rayserve

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/engines"
)

func appsFixture(t testing.TB) []byte {
	b, err := os.ReadFile("../testdata/fixtures/rayserve/api-serve-applications-ray-docs.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseApplicationsFixture(t *testing.T) {
	c, err := ParseApplications(bytes.NewReader(appsFixture(t)))
	if err != nil {
		t.Fatal(err)
	}
	if c.HTTPPort != 8000 || c.GRPCPort != 9000 || c.ProxyLocation != "EveryNode" || c.ControllerNodeIP != "10.0.29.214" {
		t.Errorf("cluster header = %+v", c)
	}
	if len(c.Proxies) != 1 || c.Proxies[0].HTTPAddr != "10.0.29.214:8000" || c.Proxies[0].GRPCAddr != "10.0.29.214:9000" || !c.Proxies[0].Healthy() {
		t.Errorf("proxies = %+v", c.Proxies)
	}
	if len(c.Apps) != 1 || c.Apps[0].Name != "app1" || c.Apps[0].RoutePrefix != "/" || len(c.Apps[0].Deployments) != 2 {
		t.Fatalf("apps = %+v", c.Apps)
	}
	d := c.Apps[0].Deployments[1]
	if d.Name != "Translator" || d.MaxOngoingRequests != 100 || d.NumCPUs != 1 || len(d.Replicas) != 1 || d.Replicas[0].ReplicaID != "app1#Translator#oMhRlb" || d.Replicas[0].PID != 29892 {
		t.Errorf("Translator = %+v", d)
	}
	routes := c.Routes()
	if len(routes) != 1 || routes[0].Replicas != 2 || routes[0].HTTPAddr != "10.0.29.214:8000" {
		t.Errorf("routes = %+v", routes)
	}
}

func TestParseApplicationsNPU(t *testing.T) {
	body := `{"http_options":{"port":8000},"proxies":{"n1":{"node_id":"n1","node_ip":"10.0.0.1","status":"HEALTHY"},"n2":{"node_id":"n2","node_ip":"10.0.0.2","status":"DRAINING"}},
"applications":{"llm":{"name":"llm","route_prefix":"/llm","status":"RUNNING","deployments":{"Qwen":{"name":"Qwen","status":"HEALTHY",
"deployment_config":{"num_replicas":3,"ray_actor_options":{"num_cpus":8,"resources":{"NPU":2}}},
"replicas":[{"node_id":"n1","node_ip":"10.0.0.1","replica_id":"a","state":"RUNNING"},{"node_id":"n1","node_ip":"10.0.0.1","replica_id":"b","state":"STARTING"},{"node_id":"n2","node_ip":"10.0.0.2","replica_id":"c","state":"RUNNING"}]}}}}}`
	c, err := ParseApplications(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Apps[0].Deployments[0].NPUs; got != 2 {
		t.Errorf("NPUs = %v", got)
	}
	r := c.Routes()
	// n1 has one RUNNING replica (the STARTING one does not count); n2's proxy is DRAINING.
	if len(r) != 1 || r[0].NodeID != "n1" || r[0].Replicas != 1 || r[0].NPUs != 2 || r[0].RoutePrefix != "/llm" {
		t.Errorf("routes = %+v", r)
	}
}

// TestParseApplicationsTopology: the ingress deployment (Ray 2.50+
// deployment_topology), accelerator_type, a null route_prefix, the
// controller's node and the gRPC servicer count.
func TestParseApplicationsTopology(t *testing.T) {
	body := `{"controller_info":{"node_id":"h","node_ip":"10.0.0.1"},"http_options":{"port":8000},
"grpc_options":{"port":9000,"grpc_servicer_functions":["x.y:add_Servicer_to_server"]},"proxies":{},
"applications":{
 "a":{"name":"a","route_prefix":"/a","status":"RUNNING","deployment_topology":{"app_name":"a","ingress_deployment":"Ing","nodes":{}},
  "deployments":{"Ing":{"name":"Ing","deployment_config":{"ray_actor_options":{"num_gpus":1,"accelerator_type":"H100"}},"replicas":[]}}},
 "b":{"name":"b","route_prefix":null,"status":"RUNNING","deployment_topology":{"app_name":"b","nodes":{"X":{"is_ingress":false},"Y":{"is_ingress":true}}},"deployments":{}},
 "c":{"name":"c","route_prefix":"/c","status":"DEPLOYING","deployments":{}}}}`
	c, err := ParseApplications(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if c.ControllerNodeID != "h" || c.GRPCServicers != 1 {
		t.Errorf("cluster %+v", c)
	}
	a, b, cc := c.Apps[0], c.Apps[1], c.Apps[2]
	if a.Ingress != "Ing" || !a.HTTPRoute || a.Deployments[0].AcceleratorType != "H100" || a.Deployments[0].NumGPUs != 1 {
		t.Errorf("a = %+v", a)
	}
	if b.Ingress != "Y" || b.HTTPRoute || b.RoutePrefix != "" {
		t.Errorf("b = %+v", b)
	}
	if cc.Ingress != "" || !cc.HTTPRoute {
		t.Errorf("c = %+v", cc)
	}
}

func TestParseApplicationsErrors(t *testing.T) {
	full := appsFixture(t)
	cases := []struct{ name, body, mention string }{
		{"empty", "", "empty"},
		{"truncated", string(full[:len(full)/2]), "truncated"},
		{"syntax", "{\n\"applications\": [}", "line 2"},
		{"no applications", `{"proxies":{}}`, "applications"},
		{"wrong type", "{\"applications\": {\"a\": {\"deployments\": 5}}}", "line 1"},
		{"replica without node", `{"applications":{"a":{"deployments":{"d":{"replicas":[{"replica_id":"x"}]}}}}}`, "replicas[0]"},
		{"bad port", `{"http_options":{"port":70000},"applications":{}}`, "port"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseApplications(strings.NewReader(c.body))
			if !errors.Is(err, engines.ErrMalformed) {
				t.Fatalf("err = %v, want ErrMalformed", err)
			}
			if !strings.Contains(err.Error(), c.mention) {
				t.Errorf("err %q does not mention %q", err, c.mention)
			}
		})
	}
}

func TestDiscover(t *testing.T) {
	body := appsFixture(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != ApplicationsPath {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Discover(ctx, srv.Client(), srv.URL+"/")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Routes()) != 1 {
		t.Errorf("routes = %+v", c.Routes())
	}
}

func TestParseLoadServeMetrics(t *testing.T) {
	text := "ray_serve_replica_processing_queries{application=\"app1\",deployment=\"Translator\",replica=\"r1\"} 3\nray_serve_deployment_queued_queries{application=\"app1\",deployment=\"Translator\"} 2\n"
	l, err := ParseLoad(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	if l.Running.String() != "3" || l.Waiting.String() != "2" || len(l.Models) != 1 {
		t.Errorf("load = %+v", l)
	}
	// A node-metrics exposition without Serve metrics is not a valid load.
	data, _ := os.ReadFile("../testdata/fixtures/rayserve/ray-node-metrics-ray2.6.1-worker-datadog-fixture.prom")
	if _, err := ParseLoad(bytes.NewReader(data)); !errors.Is(err, engines.ErrNoLoadMetrics) {
		t.Errorf("node metrics: err = %v", err)
	}
}

func FuzzParseApplications(f *testing.F) {
	f.Add(appsFixture(f))
	f.Add([]byte(`{"applications":{}}`))
	f.Add([]byte(`{"controller_info":{"node_id":"h","node_ip":"10.0.0.1"},"grpc_options":{"port":9000,"grpc_servicer_functions":["a:b"]},"applications":{"a":{"name":"a","route_prefix":null,"status":"RUNNING","deployment_topology":{"ingress_deployment":"I","nodes":{"I":{"is_ingress":true}}},"deployments":{"I":{"deployment_config":{"ray_actor_options":{"num_gpus":1,"accelerator_type":"H100"}},"replicas":[{"node_id":"h","node_ip":"10.0.0.1","state":"RUNNING"}]}}}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		c, err := ParseApplications(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, engines.ErrMalformed) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		_ = c.Routes()
	})
}
