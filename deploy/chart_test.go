package deploy

import (
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

const (
	ourImage    = "switchyard:dev" // image.repository:appVersion by default
	gatewayName = "switchyard-gateway"
)

// isOurImage reports whether img is a Switchyard image (any registry or
// tag): its last path element is "switchyard".
func isOurImage(img string) bool {
	repo := img
	if i := strings.LastIndex(repo, ":"); i > strings.LastIndex(repo, "/") {
		repo = repo[:i]
	}
	return repo == "switchyard" || strings.HasSuffix(repo, "/switchyard")
}

// The value sets the chart is rendered with. Each is checked for strict
// decoding, security contexts, selectors, flags and the gateway config;
// check adds what the case is about.
var cases = []struct {
	name   string
	values string
	check  func(t *testing.T, r rendered)
}{
	{name: "defaults", check: func(t *testing.T, r rendered) {
		want := []string{
			"ConfigMap/switchyard-gateway", "Deployment/switchyard-gateway", "PodDisruptionBudget/switchyard-gateway",
			"PodDisruptionBudget/switchyard-resource", "Service/switchyard-gateway", "Service/switchyard-resource-peers",
			"ServiceAccount/switchyard", "StatefulSet/switchyard-resource",
		}
		if got := r.kinds(); !slices.Equal(got, want) {
			t.Errorf("objects\n got %v\nwant %v", got, want)
		}
		d := r.get(t, "Deployment", gatewayName).(*appsv1.Deployment)
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
			t.Errorf("gateway replicas %v", d.Spec.Replicas)
		}
		if *d.Spec.Template.Spec.AutomountServiceAccountToken {
			t.Error("gateway mounts a service account token without Kubernetes discovery")
		}
		ss := r.get(t, "StatefulSet", "switchyard-resource").(*appsv1.StatefulSet)
		if ss.Spec.ServiceName != "switchyard-resource-peers" || *ss.Spec.Replicas != 3 {
			t.Errorf("resource: service %q replicas %d", ss.Spec.ServiceName, *ss.Spec.Replicas)
		}
		args := ss.Spec.Template.Spec.Containers[0].Args
		if !slices.Contains(args, "--peer-dns=switchyard-resource-peers.switchyard.svc:7100") {
			t.Errorf("resource args %v", args)
		}
		peers := r.get(t, "Service", "switchyard-resource-peers").(*corev1.Service)
		if peers.Spec.ClusterIP != corev1.ClusterIPNone || !peers.Spec.PublishNotReadyAddresses {
			t.Errorf("peers service: clusterIP %q publishNotReady %v", peers.Spec.ClusterIP, peers.Spec.PublishNotReadyAddresses)
		}
		gc, _ := gatewayConfig(t, r)
		if gc.Discovery == nil || len(gc.Discovery.Servers) != 3 || gc.Discovery.Servers[2] != "switchyard-resource-2.switchyard-resource-peers.switchyard.svc:7100" {
			t.Errorf("gateway discovery %+v", gc.Discovery)
		}
		if gc.Discovery.TokenFile != "" {
			t.Error("token file without a token secret")
		}
		if !strings.Contains(r.notes, "WARNING: the Resource tier runs without a token") {
			t.Errorf("NOTES do not warn about the missing token:\n%s", r.notes)
		}
	}},
	{name: "agent sidecar", values: `
token: {existingSecret: sy-token}
engines:
  - {name: llama, engine: vllm, image: vllm/vllm-openai:v0.11.0, port: 8000, replicas: 2, accelerator: H100, cards: 8,
     args: [--model, meta-llama/Llama-3.1-8B-Instruct], resources: {limits: {nvidia.com/gpu: 8}}}
`, check: func(t *testing.T, r rendered) {
		d := r.get(t, "Deployment", "switchyard-llama").(*appsv1.Deployment)
		ps := d.Spec.Template.Spec
		if len(ps.InitContainers) != 1 || ps.InitContainers[0].RestartPolicy == nil || *ps.InitContainers[0].RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Fatalf("agent is not a native sidecar: %+v", ps.InitContainers)
		}
		agent := ps.InitContainers[0]
		for _, want := range []string{"agent", "--app=llama", "--id=$(POD_NAME)", "--addr=http=$(POD_IP):8000", "--engine=vllm",
			"--accel-model=H100", "--accel-count=8", "--control=127.0.0.1:7190", "--drain-timeout=45s",
			"--servers=switchyard-resource-0.switchyard-resource-peers.switchyard.svc:7100,switchyard-resource-1.switchyard-resource-peers.switchyard.svc:7100,switchyard-resource-2.switchyard-resource-peers.switchyard.svc:7100"} {
			if !slices.Contains(agent.Args, want) {
				t.Errorf("agent args lack %q: %v", want, agent.Args)
			}
		}
		if env := envNamed(agent.Env, "SWITCHYARD_TOKEN"); env == nil || env.ValueFrom.SecretKeyRef.Name != "sy-token" {
			t.Errorf("agent token env %+v", env)
		}
		for _, a := range agent.Args {
			if strings.Contains(a, "token") {
				t.Errorf("a token in the agent's args: %q", a)
			}
		}
		eng := ps.Containers[0]
		pre := eng.Lifecycle.PreStop
		if pre == nil || pre.Exec == nil || !slices.Equal(pre.Exec.Command, []string{"/opt/switchyard/switchyard", "agent", "drain", "--control=127.0.0.1:7190", "--timeout=45s"}) {
			t.Errorf("engine preStop %+v", pre)
		}
		if len(ps.Volumes) != 1 || ps.Volumes[0].Image == nil || ps.Volumes[0].Image.Reference != ourImage {
			t.Errorf("image volume %+v", ps.Volumes)
		}
		if len(eng.VolumeMounts) != 1 || eng.VolumeMounts[0].MountPath != "/opt/switchyard" {
			t.Errorf("engine mounts %+v", eng.VolumeMounts)
		}
		if *ps.TerminationGracePeriodSeconds <= 45 {
			t.Errorf("grace period %d does not cover the 45 s drain", *ps.TerminationGracePeriodSeconds)
		}
		a := d.Spec.Template.Annotations
		if a["switchyard.dev/accelerator"] != "H100" || a["switchyard.dev/cards"] != "8" || d.Spec.Template.Labels["switchyard.dev/agent"] != "true" {
			t.Errorf("engine pod annotations %v labels %v", a, d.Spec.Template.Labels)
		}
		gc, _ := gatewayConfig(t, r)
		if gc.Discovery.TokenFile != "/etc/switchyard/token/token" {
			t.Errorf("gateway token file %q", gc.Discovery.TokenFile)
		}
		if strings.Contains(r.notes, "WARNING") {
			t.Error("NOTES warn although a token is set")
		}
	}},
	{name: "agent as a plain sidecar, binary in the engine image", values: `
agent: {nativeSidecar: false, drainHook: engineImage, binaryPath: /usr/bin/switchyard, drainSeconds: 20}
engines: [{name: qwen, engine: sglang, image: lmsysorg/sglang:v0.5, port: 30000, readinessPath: /health_generate}]
`, check: func(t *testing.T, r rendered) {
		ps := r.get(t, "Deployment", "switchyard-qwen").(*appsv1.Deployment).Spec.Template.Spec
		if len(ps.InitContainers) != 0 || len(ps.Containers) != 2 || ps.Containers[1].Name != "switchyard-agent" {
			t.Fatalf("containers %d, init %d", len(ps.Containers), len(ps.InitContainers))
		}
		if got := ps.Containers[0].Lifecycle.PreStop.Exec.Command; got[0] != "/usr/bin/switchyard" || got[4] != "--timeout=20s" {
			t.Errorf("preStop %v", got)
		}
		if len(ps.Volumes) != 0 {
			t.Errorf("volumes %+v", ps.Volumes)
		}
		if ps.Containers[0].ReadinessProbe.HTTPGet.Path != "/health_generate" {
			t.Errorf("readiness %+v", ps.Containers[0].ReadinessProbe)
		}
	}},
	{name: "agent drains on SIGTERM, engine sleeps", values: `
agent: {drainHook: sleep, drainSeconds: 30}
engines: [{name: llama, engine: vllm, image: vllm/vllm-openai:v0.11.0, port: 8000}]
`, check: func(t *testing.T, r rendered) {
		ps := r.get(t, "Deployment", "switchyard-llama").(*appsv1.Deployment).Spec.Template.Spec
		pre := ps.Containers[0].Lifecycle.PreStop
		if pre.Sleep == nil || pre.Sleep.Seconds != 30 || pre.Exec != nil {
			t.Errorf("preStop %+v", pre)
		}
	}},
	{name: "agent off, Kubernetes discovery of the engines", values: `
resource: {enabled: false}
agent: {enabled: false}
engines: [{name: llama, engine: vllm, image: vllm/vllm-openai:v0.11.0, port: 8000, accelerator: A10, cards: 1}]
gateway:
  config:
    routes: [{name: llama, match: {models: [llama]}, app: llama}]
  kubernetes:
    enabled: true
    config:
      apps: [{app: llama, service: switchyard-llama, port: http, engine: vllm}]
`, check: func(t *testing.T, r rendered) {
		ps := r.get(t, "Deployment", "switchyard-llama").(*appsv1.Deployment).Spec.Template.Spec
		if len(ps.InitContainers)+len(ps.Containers) != 1 || ps.Containers[0].Lifecycle != nil || len(ps.Volumes) != 0 {
			t.Errorf("engine without agent: init %d containers %d lifecycle %+v", len(ps.InitContainers), len(ps.Containers), ps.Containers[0].Lifecycle)
		}
		if len(r.of("StatefulSet")) != 0 {
			t.Error("resource tier rendered while disabled")
		}
		gc, kc := gatewayConfig(t, r)
		if gc.Discovery != nil || kc == nil || kc.Namespace != releaseNS || kc.Apps[0].Service != "switchyard-llama" {
			t.Errorf("gateway discovery %+v kubernetes %+v", gc.Discovery, kc)
		}
		// The Service the app names exists and has the port it names.
		svc := r.get(t, "Service", "switchyard-llama").(*corev1.Service)
		if svc.Spec.Ports[0].Name != "http" {
			t.Errorf("engine service ports %+v", svc.Spec.Ports)
		}
		d := r.get(t, "Deployment", gatewayName).(*appsv1.Deployment)
		if !*d.Spec.Template.Spec.AutomountServiceAccountToken {
			t.Error("Kubernetes discovery without the service account token")
		}
		role := r.get(t, "Role", "switchyard-gateway-discovery").(*rbacv1.Role)
		if role.Namespace != releaseNS || !hasRule(role.Rules, "discovery.k8s.io", "endpointslices") || !hasRule(role.Rules, "", "pods") ||
			hasRule(role.Rules, "inference.networking.k8s.io", "inferencepools") {
			t.Errorf("role %+v", role.Rules)
		}
		rb := r.get(t, "RoleBinding", "switchyard-gateway-discovery").(*rbacv1.RoleBinding)
		if rb.Subjects[0].Name != "switchyard" || rb.Subjects[0].Namespace != releaseNS || rb.RoleRef.Name != role.Name {
			t.Errorf("binding %+v", rb)
		}
	}},
	{name: "Kubernetes discovery in several namespaces, pools", values: `
gateway:
  config:
    routes:
      - {name: a, match: {models: [a]}, app: a}
      - {name: b, match: {models: [b]}, app: b}
  kubernetes:
    enabled: true
    config:
      scrape: {interval: 2s}
      apps:
        - {app: a, namespaces: [models-a, models-b], selector: "app=vllm", port: "8000", engine: vllm}
        - {app: b, inference_pool: llama-pool, namespaces: [gie]}
`, check: func(t *testing.T, r rendered) {
		var nss []string
		for _, o := range r.of("Role") {
			nss = append(nss, o.ns)
			role := o.obj.(*rbacv1.Role)
			if hasRule(role.Rules, "discovery.k8s.io", "endpointslices") || !hasRule(role.Rules, "inference.networking.k8s.io", "inferencepools") {
				t.Errorf("role in %s: %+v", o.ns, role.Rules)
			}
		}
		if !slices.Equal(nss, []string{"gie", "models-a", "models-b"}) || len(r.of("RoleBinding")) != 3 {
			t.Errorf("roles in %v, %d bindings", nss, len(r.of("RoleBinding")))
		}
		_, kc := gatewayConfig(t, r)
		if kc.Scrape.Interval.Seconds() != 2 {
			t.Errorf("scrape %+v", kc.Scrape)
		}
		if !strings.Contains(r.notes, "gie, models-a, models-b") {
			t.Errorf("NOTES:\n%s", r.notes)
		}
	}},
	{name: "Kubernetes discovery cluster-wide", values: `
gateway:
  kubernetes:
    enabled: true
    clusterWide: true
    config: {apps: [{app: default, service: vllm}]}
`, check: func(t *testing.T, r rendered) {
		if len(r.of("Role")) != 0 || len(r.of("ClusterRole")) != 1 || len(r.of("ClusterRoleBinding")) != 1 {
			t.Errorf("objects %v", r.kinds())
		}
	}},
	{name: "service monitors", values: `
token: {existingSecret: sy-token, key: t}
gateway: {serviceMonitor: {enabled: true, labels: {release: prometheus}}}
resource: {serviceMonitor: {enabled: true, interval: 30s}}
`, check: func(t *testing.T, r rendered) {
		sms := r.of("ServiceMonitor")
		if len(sms) != 2 {
			t.Fatalf("%d ServiceMonitors", len(sms))
		}
		for _, o := range sms {
			if !strings.Contains(o.yaml, "path: /metrics") {
				t.Errorf("%s: %s", o, o.yaml)
			}
		}
		if !strings.Contains(sms[1].yaml, "name: sy-token") || !strings.Contains(sms[1].yaml, "key: t") {
			t.Errorf("resource ServiceMonitor without the bearer token: %s", sms[1].yaml)
		}
	}},
	{name: "autoscaling", values: `gateway: {autoscaling: {enabled: true, minReplicas: 3, maxReplicas: 12}}`, check: func(t *testing.T, r rendered) {
		d := r.get(t, "Deployment", gatewayName).(*appsv1.Deployment)
		if d.Spec.Replicas != nil {
			t.Errorf("replicas %d set while the HPA owns them", *d.Spec.Replicas)
		}
		h := r.get(t, "HorizontalPodAutoscaler", gatewayName).(*autoscalingv2.HorizontalPodAutoscaler)
		if *h.Spec.MinReplicas != 3 || h.Spec.MaxReplicas != 12 || h.Spec.ScaleTargetRef.Name != gatewayName {
			t.Errorf("hpa %+v", h.Spec)
		}
	}},
	{name: "network policies", values: `
networkPolicy: {enabled: true, clientFrom: [{namespaceSelector: {matchLabels: {team: apps}}}]}
engines: [{name: llama, engine: vllm, image: vllm/vllm-openai:v0.11.0, port: 8000}]
`, check: func(t *testing.T, r rendered) {
		nps := r.of("NetworkPolicy")
		if len(nps) != 3 {
			t.Fatalf("%d NetworkPolicies: %v", len(nps), r.kinds())
		}
		gw := r.get(t, "NetworkPolicy", gatewayName).(*networkingv1.NetworkPolicy)
		if len(gw.Spec.Ingress) != 2 || gw.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels["team"] != "apps" {
			t.Errorf("gateway policy %+v", gw.Spec.Ingress)
		}
		eng := r.get(t, "NetworkPolicy", "switchyard-llama").(*networkingv1.NetworkPolicy)
		if eng.Spec.Ingress[0].From[0].PodSelector.MatchLabels["app.kubernetes.io/component"] != "gateway" {
			t.Errorf("engine policy %+v", eng.Spec.Ingress)
		}
	}},
	{name: "TLS and API keys", values: `
gateway: {tls: {existingSecret: gw-tls}, apiKeys: {existingSecret: gw-keys}}
`, check: func(t *testing.T, r rendered) {
		gc, _ := gatewayConfig(t, r)
		if gc.Listen.TLSCert != "/etc/switchyard/tls/tls.crt" || gc.Listen.TLSKey != "/etc/switchyard/tls/tls.key" {
			t.Errorf("listen %+v", gc.Listen)
		}
		ps := r.get(t, "Deployment", gatewayName).(*appsv1.Deployment).Spec.Template.Spec
		var mounts []string
		for _, m := range ps.Containers[0].VolumeMounts {
			mounts = append(mounts, m.MountPath)
		}
		for _, want := range []string{"/etc/switchyard/tls", "/etc/switchyard/api-keys"} {
			if !slices.Contains(mounts, want) {
				t.Errorf("no mount at %s: %v", want, mounts)
			}
		}
	}},
}

func TestChartRenders(t *testing.T) {
	c := loadChart(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := render(t, c, tc.values)
			checkSecurity(t, r)
			checkSelectors(t, r)
			checkGateway(t, r)
			checkRBAC(t, r)
			checkFlags(t, r)
			gatewayConfig(t, r)
			if tc.check != nil {
				tc.check(t, r)
			}
		})
	}
}

// Bad values fail the render with a message that names the value.
func TestChartRejectsBadValues(t *testing.T) {
	c := loadChart(t)
	for _, tc := range []struct{ values, want string }{
		{`gatway: {replicas: 2}`, "gatway"},
		{`gateway: {replicas: two}`, "replicas"},
		{`gateway: {ports: {admin: 70000}}`, "admin"},
		{`agent: {drainHook: preStop}`, "drainHook"},
		{`engines: [{name: llama, engine: vllm, port: 8000}]`, "image"},
		{`engines: [{name: Llama_3, engine: vllm, image: x, port: 8000}]`, "name"},
		{`engines: [{name: llama, engine: ollama, image: x, port: 8000}]`, "engine"},
		{`gateway: {kubernetes: {config: {apps: [{service: x}]}}}`, "app"},
	} {
		_, err := renderValues(c, tc.values)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("values %s: err %v, want one naming %q", tc.values, err, tc.want)
		}
	}
}

// helm lint passes with the default values and with engines.
func TestChartLint(t *testing.T) {
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	for _, values := range []string{"", cases[1].values} {
		var vals map[string]any
		if err := yaml.Unmarshal([]byte(values), &vals); err != nil {
			t.Fatal(err)
		}
		res := lint.RunAll(chartDir, vals, releaseNS, lint.WithKubeVersion(kv))
		for _, m := range res.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("lint: %s", m)
			}
		}
	}
}

// checkSecurity: every Switchyard container runs as non-root on a
// read-only root filesystem without privilege escalation or capabilities,
// under the RuntimeDefault seccomp profile; engine containers at least
// drop capabilities and escalation.
func checkSecurity(t *testing.T, r rendered) {
	t.Helper()
	for name, pt := range r.podSpecs() {
		ps := pt.Spec
		podNonRoot := ps.SecurityContext != nil && ps.SecurityContext.RunAsNonRoot != nil && *ps.SecurityContext.RunAsNonRoot
		podSeccomp := ps.SecurityContext != nil && ps.SecurityContext.SeccompProfile != nil && ps.SecurityContext.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault
		for _, c := range slices.Concat(ps.InitContainers, ps.Containers) {
			where := name + " container " + c.Name
			sc := c.SecurityContext
			if sc == nil {
				t.Errorf("%s: no securityContext", where)
				continue
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: privilege escalation allowed", where)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: capabilities %+v", where, sc.Capabilities)
			}
			seccomp := podSeccomp || (sc.SeccompProfile != nil && sc.SeccompProfile.Type == corev1.SeccompProfileTypeRuntimeDefault)
			if !seccomp {
				t.Errorf("%s: no RuntimeDefault seccomp profile", where)
			}
			if !isOurImage(c.Image) {
				continue
			}
			if !podNonRoot && (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
				t.Errorf("%s: may run as root", where)
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Errorf("%s: writable root filesystem", where)
			}
			if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
				t.Errorf("%s: no memory request or limit", where)
			}
		}
	}
}

// checkSelectors: workloads select their own pods; Services, PDBs and
// NetworkPolicies select pods some workload runs.
func checkSelectors(t *testing.T, r rendered) {
	t.Helper()
	pods := r.podSpecs()
	matchesSome := func(sel labels.Selector) bool {
		for _, p := range pods {
			if sel.Matches(labels.Set(p.Labels)) {
				return true
			}
		}
		return false
	}
	for _, o := range r.objects {
		var sel labels.Selector
		switch x := o.obj.(type) {
		case *appsv1.Deployment:
			if !labels.SelectorFromSet(x.Spec.Selector.MatchLabels).Matches(labels.Set(x.Spec.Template.Labels)) {
				t.Errorf("%s does not select its own pods", o)
			}
			continue
		case *appsv1.StatefulSet:
			if !labels.SelectorFromSet(x.Spec.Selector.MatchLabels).Matches(labels.Set(x.Spec.Template.Labels)) {
				t.Errorf("%s does not select its own pods", o)
			}
			continue
		case *corev1.Service:
			sel = labels.SelectorFromSet(x.Spec.Selector)
		case *policyv1.PodDisruptionBudget:
			sel = labels.SelectorFromSet(x.Spec.Selector.MatchLabels)
		case *networkingv1.NetworkPolicy:
			sel = labels.SelectorFromSet(x.Spec.PodSelector.MatchLabels)
		}
		if sel != nil && !matchesSome(sel) {
			t.Errorf("%s selects no pod of the chart (%s)", o, sel)
		}
	}
}

// checkGateway: probes on the admin port, a preStop pause, the config
// mounted.
func checkGateway(t *testing.T, r rendered) {
	t.Helper()
	for _, o := range r.of("Deployment") {
		if o.name != gatewayName {
			continue
		}
		c := o.obj.(*appsv1.Deployment).Spec.Template.Spec.Containers[0]
		if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" || p.HTTPGet.Port.String() != "admin" {
			t.Errorf("gateway readiness probe %+v", p)
		}
		if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" || p.HTTPGet.Port.String() != "admin" {
			t.Errorf("gateway liveness probe %+v", p)
		}
		if l := c.Lifecycle; l == nil || l.PreStop == nil || l.PreStop.Sleep == nil || l.PreStop.Sleep.Seconds < 1 {
			t.Errorf("gateway preStop %+v", l)
		}
	}
}

// checkRBAC: discovery only reads, and only what it reads.
func checkRBAC(t *testing.T, r rendered) {
	t.Helper()
	allowed := map[string]bool{"/pods": true, "discovery.k8s.io/endpointslices": true, "inference.networking.k8s.io/inferencepools": true}
	for _, o := range r.objects {
		var rules []rbacv1.PolicyRule
		switch x := o.obj.(type) {
		case *rbacv1.Role:
			rules = x.Rules
		case *rbacv1.ClusterRole:
			rules = x.Rules
		default:
			continue
		}
		for _, rule := range rules {
			for _, v := range rule.Verbs {
				if v != "get" && v != "list" && v != "watch" {
					t.Errorf("%s: verb %q", o, v)
				}
			}
			for _, g := range rule.APIGroups {
				for _, res := range rule.Resources {
					if !allowed[g+"/"+res] {
						t.Errorf("%s: %s/%s is not something discovery reads", o, g, res)
					}
				}
			}
			if len(rule.ResourceNames) > 0 || len(rule.NonResourceURLs) > 0 {
				t.Errorf("%s: unexpected rule %+v", o, rule)
			}
		}
	}
}

func hasRule(rules []rbacv1.PolicyRule, group, resource string) bool {
	for _, r := range rules {
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) {
			return true
		}
	}
	return false
}

func envNamed(env []corev1.EnvVar, name string) *corev1.EnvVar {
	for i := range env {
		if env[i].Name == name {
			return &env[i]
		}
	}
	return nil
}
