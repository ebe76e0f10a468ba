package kubernetes

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"
	kube "k8s.io/client-go/kubernetes"

	"github.com/switchyard-dev/switchyard/discovery"
	"github.com/switchyard-dev/switchyard/discovery/scrape"
	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/capacity"
)

// Pod annotations (or labels; the annotation wins) that give a node's
// capacity: the card model, looked up in the engines/capacity table, and
// the number of cards.
const (
	AnnotationAccelerator = "switchyard.dev/accelerator"
	AnnotationCards       = "switchyard.dev/cards"
)

// Config configures a [Source]. It is the `kubernetes:` block of the
// gateway's YAML config. Process it in order: ApplyDefaults, Validate
// ([New] does both). Every field's doc states its default.
type Config struct {
	// Kubeconfig is a kubeconfig file to reach the API server with. Empty
	// (the default) uses the pod's service account (in-cluster config).
	Kubeconfig string `yaml:"kubeconfig"`
	// Namespace is the namespace of apps that name none. Default: the
	// gateway pod's own namespace (the service account's namespace file,
	// else $POD_NAMESPACE), else "default".
	Namespace string `yaml:"namespace"`
	// Apps are the discovery applications this source serves; a gateway
	// route reads one by naming it in its `app:`. At least one.
	Apps []AppConfig `yaml:"apps"`
	// Scrape tunes the agentless load scrapes of apps that name an
	// engine (defaults: every 1 s, 800 ms timeout, 32 at once).
	Scrape scrape.Config `yaml:"scrape"`
	// LoadCoalesce is the shortest time between two lists of one app that
	// differ only in load (scrape results). Changes of membership or state
	// are published at once. Default 1 s; negative publishes a list after
	// every scrape.
	LoadCoalesce time.Duration `yaml:"load_coalesce"`

	// OnUpdate, when set, receives every new version of an app's list, from
	// the source's publisher goroutine (calls are serialised). It must not
	// block and must not modify the list.
	OnUpdate func(app string, list discovery.OnlineList) `yaml:"-"`
	// Logger defaults to slog.Default().
	Logger *slog.Logger `yaml:"-"`
	// Client and Dynamic reach the API server. Nil builds them from
	// Kubeconfig (or the in-cluster config); tests pass client-go fakes.
	// Dynamic is used only by apps that read an InferencePool.
	Client  kube.Interface    `yaml:"-"`
	Dynamic dynamic.Interface `yaml:"-"`
	// Capacity is the card coefficient table. Default capacity.Default().
	Capacity *capacity.Table `yaml:"-"`
}

// AppConfig says where one application's nodes are. Set exactly one of
// Service, Selector (alone) or InferencePool.
type AppConfig struct {
	// App is the discovery application name routes use. Required.
	App string `yaml:"app"`
	// Namespaces to read the app's nodes from (all of them, merged).
	// Default: [Config.Namespace].
	Namespaces []string `yaml:"namespaces"`

	// Service: the nodes are the endpoints of this Service's
	// EndpointSlices (its ready, terminating and not-ready endpoints).
	Service string `yaml:"service"`
	// Selector is a label selector ("app=vllm,tier in (a,b)"). Without
	// Service: the nodes are the Pods it matches. With Service: it only
	// narrows the Pods watched for capacity annotations. Default: none.
	Selector string `yaml:"selector"`
	// InferencePool: the nodes are the Pods this Gateway API Inference
	// Extension InferencePool (inference.networking.k8s.io/v1) selects,
	// one node per pod and target port; h2c pools give gRPC addresses.
	InferencePool string `yaml:"inference_pool"`

	// Port is the HTTP serving port: for a Service, its port name or the
	// target port number in the EndpointSlices; for Pods, a container
	// port name or a number. Default: the only port (for a Service, the
	// slices' only port; for Pods, the only declared container port).
	// Ignored for an InferencePool (its target ports are used).
	Port string `yaml:"port"`
	// GRPCPort, when set, gives each node a gRPC (h2c) address on this
	// port (name or number, as Port). Default: none.
	GRPCPort string `yaml:"grpc_port"`

	// Engine is the inference engine the nodes run ("vllm", "sglang",
	// "tgi", "triton", "mindie", ...). When set, the gateway scrapes each
	// ready node's metrics itself with that engine's adapter and the
	// nodes carry the load it reads. Default: none (no scrapes, load
	// unknown).
	Engine string `yaml:"engine"`
	// MetricsPort is the port of the engine's metrics. Default: the
	// engine's own metrics port, else the serving port.
	MetricsPort int `yaml:"metrics_port"`
	// MetricsPath is the path of the engine's metrics. Default: the
	// engine's (/metrics for most).
	MetricsPath string `yaml:"metrics_path"`

	// Accelerator and Cards are the card model and count of nodes whose
	// pod has no switchyard.dev/accelerator or switchyard.dev/cards
	// annotation. Default: none and 0.
	Accelerator string `yaml:"accelerator"`
	Cards       int    `yaml:"cards"`
	// Capacity is the relative capacity of nodes whose card count is
	// unknown (neither annotated nor set in Cards). Default 1.
	Capacity float64 `yaml:"capacity"`
}

// kind is how an app finds its nodes.
type kind int

const (
	kindService kind = iota
	kindPods
	kindPool
)

func (a *AppConfig) kind() kind {
	switch {
	case a.InferencePool != "":
		return kindPool
	case a.Service != "":
		return kindService
	default:
		return kindPods
	}
}

// serviceAccountNamespace is where Kubernetes mounts the pod's namespace.
const serviceAccountNamespace = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

// ApplyDefaults fills zero fields with their documented defaults.
func (c *Config) ApplyDefaults() {
	if c.Namespace == "" {
		c.Namespace = ownNamespace()
	}
	if c.LoadCoalesce == 0 {
		c.LoadCoalesce = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Scrape.Logger == nil {
		c.Scrape.Logger = c.Logger
	}
	c.Scrape.ApplyDefaults()
	if c.Capacity == nil {
		c.Capacity = capacity.Default()
	}
	for i := range c.Apps {
		a := &c.Apps[i]
		if len(a.Namespaces) == 0 {
			a.Namespaces = []string{c.Namespace}
		}
		if a.Capacity == 0 {
			a.Capacity = 1
		}
	}
}

// ownNamespace is the namespace the process runs in, else "default".
func ownNamespace() string {
	if b, err := os.ReadFile(serviceAccountNamespace); err == nil {
		if ns := strings.TrimSpace(string(b)); ns != "" {
			return ns
		}
	}
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return "default"
}

// Validate returns an error naming the first bad field by its YAML path,
// e.g. "kubernetes.apps[1].port: ...".
func (c *Config) Validate() error {
	if len(c.Apps) == 0 {
		return errors.New("kubernetes.apps: at least one app is required")
	}
	if err := c.Scrape.Validate(); err != nil {
		return fmt.Errorf("kubernetes.%w", err)
	}
	if c.Namespace != "" {
		if err := checkName("kubernetes.namespace", c.Namespace, validation.IsDNS1123Label); err != nil {
			return err
		}
	}
	seen := make(map[string]int, len(c.Apps))
	for i := range c.Apps {
		field := fmt.Sprintf("kubernetes.apps[%d]", i)
		a := &c.Apps[i]
		if j, dup := seen[a.App]; dup {
			return fmt.Errorf("%s.app: %q is also apps[%d]", field, a.App, j)
		}
		seen[a.App] = i
		if err := a.validate(field); err != nil {
			return err
		}
	}
	return nil
}

func (a *AppConfig) validate(field string) error {
	if a.App == "" || len(a.App) > discovery.MaxIDLen {
		return fmt.Errorf("%s.app: required, at most %d bytes", field, discovery.MaxIDLen)
	}
	field = fmt.Sprintf("%s (app %s)", field, a.App)
	n := 0
	for _, s := range []string{a.Service, a.InferencePool} {
		if s != "" {
			n++
		}
	}
	if a.Selector != "" && a.Service == "" {
		n++
	}
	if n != 1 {
		return fmt.Errorf("%s: set exactly one of service, selector or inference_pool (selector may narrow a service)", field)
	}
	if a.InferencePool != "" && a.Selector != "" {
		return fmt.Errorf("%s.selector: not used with inference_pool (the pool has its own)", field)
	}
	for i, ns := range a.Namespaces {
		if err := checkName(fmt.Sprintf("%s.namespaces[%d]", field, i), ns, validation.IsDNS1123Label); err != nil {
			return err
		}
	}
	if a.Service != "" {
		if err := checkName(field+".service", a.Service, validation.IsDNS1035Label); err != nil {
			return err
		}
	}
	if a.InferencePool != "" {
		if err := checkName(field+".inference_pool", a.InferencePool, validation.IsDNS1123Subdomain); err != nil {
			return err
		}
	}
	if a.Selector != "" {
		if _, err := labels.Parse(a.Selector); err != nil {
			return fmt.Errorf("%s.selector: %w", field, err)
		}
	}
	if err := checkPort(field+".port", a.Port); err != nil {
		return err
	}
	if err := checkPort(field+".grpc_port", a.GRPCPort); err != nil {
		return err
	}
	if a.Engine != "" {
		if _, err := engines.Lookup(a.Engine); err != nil {
			return fmt.Errorf("%s.engine: %w", field, err)
		}
	}
	if a.MetricsPort < 0 || a.MetricsPort > 65535 {
		return fmt.Errorf("%s.metrics_port: %d is not a port", field, a.MetricsPort)
	}
	if a.MetricsPath != "" && !strings.HasPrefix(a.MetricsPath, "/") {
		return fmt.Errorf("%s.metrics_path: %q does not start with /", field, a.MetricsPath)
	}
	if a.Cards < 0 || a.Cards > discovery.MaxCards {
		return fmt.Errorf("%s.cards: %d is not in [0, %d]", field, a.Cards, discovery.MaxCards)
	}
	if len(a.Accelerator) > discovery.MaxNameLen {
		return fmt.Errorf("%s.accelerator: longer than %d bytes", field, discovery.MaxNameLen)
	}
	if !(a.Capacity > 0 && a.Capacity <= discovery.MaxCapacity) {
		return fmt.Errorf("%s.capacity: %g is not in (0, %g]", field, a.Capacity, float64(discovery.MaxCapacity))
	}
	return nil
}

func checkName(field, v string, check func(string) []string) error {
	if errs := check(v); len(errs) > 0 {
		return fmt.Errorf("%s: %q: %s", field, v, strings.Join(errs, "; "))
	}
	return nil
}

// checkPort accepts "", a port number or an IANA service name (what
// Kubernetes allows as a port name).
func checkPort(field, p string) error {
	if p == "" {
		return nil
	}
	if n, err := strconv.Atoi(p); err == nil {
		if n < 1 || n > 65535 {
			return fmt.Errorf("%s: %d is not a port", field, n)
		}
		return nil
	}
	return checkName(field, p, validation.IsValidPortName)
}
