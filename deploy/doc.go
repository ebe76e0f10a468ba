// Package deploy holds the tests of Switchyard's deployment files: the
// Helm chart (helm/switchyard), the plain manifests rendered from it
// (kubernetes/), the examples (examples/) and the Dockerfile's Go version.
//
// It is its own Go module (deploy/go.mod) so that Helm and the Kubernetes
// API types never reach the switchyard binary. Its tests render the chart
// with the Helm SDK for several sets of values and decode every object
// strictly into its Kubernetes API type (an unknown or duplicate field
// fails), check the security contexts, probes and RBAC, parse the gateway
// config the chart writes with the gateway's own parser, check that
// every switchyard flag the manifests pass exists, and that the chart's
// copy of the Grafana dashboard (grafana/switchyard.json, whose queries
// gateway's TestGrafanaDashboard checks against a live scrape) is the
// dashboard.
//
// `go test ./... -run TestManifestsInSync -update` (make deploy-manifests)
// regenerates kubernetes/ from the chart.
package deploy
