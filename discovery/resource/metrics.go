package resource

import (
	"bufio"
	"fmt"
	"net/http"
	"sort"

	"github.com/switchyard-dev/switchyard/discovery"
)

// handleMetrics writes the instance's metrics in the Prometheus text format.
func (s *Server) handleMetrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	counter := func(name, help string, v uint64) {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
	}
	gauge := func(name, help string, v int64) {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s gauge\n%s %d\n", name, help, name, name, v)
	}
	counter("switchyard_resource_heartbeats_total", "Heartbeats accepted (framed and HTTP).", s.stats.heartbeats.Load())
	counter("switchyard_resource_http_heartbeats_total", "Heartbeats accepted over HTTP.", s.stats.httpBeats.Load())
	counter("switchyard_resource_stale_heartbeats_total", "Heartbeats older than one already applied.", s.stats.staleBeats.Load())
	s.rejections.WritePrometheus(bw, "switchyard_resource_rejections_total", "Inputs rejected and not stored, by reason.")
	counter("switchyard_resource_commits_total", "List versions committed.", s.stats.commits.Load())
	counter("switchyard_resource_changes_total", "Node changes committed from local heartbeats.", s.stats.changes.Load())
	counter("switchyard_resource_peer_changes_sent_total", "Changes queued to peers.", s.stats.peerSent.Load())
	counter("switchyard_resource_peer_changes_dropped_total", "Changes dropped for slow peers (they get a dump).", s.stats.peerDropped.Load())
	counter("switchyard_resource_peer_changes_received_total", "Changes received from peers.", s.stats.peerRecv.Load())
	counter("switchyard_resource_expired_total", "Nodes expired by silence.", s.stats.expired.Load())
	counter("switchyard_resource_guard_held_total", "Expiries the per-app guard refused.", s.stats.guardHeld.Load())
	gauge("switchyard_resource_agent_connections", "Open framed agent connections.", s.stats.agentConns.Load())
	gauge("switchyard_resource_watches", "List reads in flight (long-polls included).", s.stats.watches.Load())
	gauge("switchyard_resource_peers_connected", "Peers with a live outbound link.", int64(len(s.peers.connected())))

	apps := s.appList()
	sort.Slice(apps, func(i, j int) bool { return apps[i].name < apps[j].name })
	fmt.Fprintf(bw, "# HELP switchyard_resource_nodes Listed nodes by app and state.\n# TYPE switchyard_resource_nodes gauge\n")
	type row struct {
		version uint64
		subs    int
	}
	rows := make([]row, len(apps))
	for i, a := range apps {
		var by [5]int
		a.mu.Lock()
		for _, rec := range a.nodes {
			if !rec.removed && int(rec.node.State) < len(by) {
				by[rec.node.State]++
			}
		}
		rows[i] = row{a.version, len(a.subs)}
		a.mu.Unlock()
		for _, st := range []discovery.State{discovery.StateReady, discovery.StateDraining, discovery.StateSuspect} {
			fmt.Fprintf(bw, "switchyard_resource_nodes{app=%q,state=%q} %d\n", a.name, st.String(), by[st])
		}
	}
	fmt.Fprintf(bw, "# HELP switchyard_resource_list_version Current list version by app.\n# TYPE switchyard_resource_list_version gauge\n")
	for i, a := range apps {
		fmt.Fprintf(bw, "switchyard_resource_list_version{app=%q} %d\n", a.name, rows[i].version)
	}
	fmt.Fprintf(bw, "# HELP switchyard_resource_subscribers Known subscribers by app.\n# TYPE switchyard_resource_subscribers gauge\n")
	for i, a := range apps {
		fmt.Fprintf(bw, "switchyard_resource_subscribers{app=%q} %d\n", a.name, rows[i].subs)
	}
}
