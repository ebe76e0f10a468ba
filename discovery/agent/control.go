package agent

import (
	"encoding/json"
	"errors"
	"net/http"
)

// ControlStatus is the agent's state as its control endpoint reports it.
type ControlStatus struct {
	Node     string `json:"node"`
	App      string `json:"app"`
	State    string `json:"state"`
	Server   string `json:"server"`
	Rejected uint64 `json:"rejected"`
	// LastReject says why Resource last refused a heartbeat or the
	// connection (credential, binding, limit, incarnation).
	LastReject string `json:"last_reject,omitempty"`
}

// DrainReply is the body of a POST /drain answer.
type DrainReply struct {
	Done   bool   `json:"done"`
	Error  string `json:"error,omitempty"`
	Status any    `json:"status"`
}

// ControlHandler returns the agent's local control API, for `switchyard
// agent drain` and PreStop hooks. Serve it on loopback only: it has no
// authentication of its own.
//
//	POST /drain    drain (blocks until done or timed out): 200 done, 504 timed out
//	POST /undrain  back to ready
//	GET  /status   ControlStatus
func ControlHandler(a *Agent) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /drain", func(w http.ResponseWriter, r *http.Request) {
		st, err := a.Drain(r.Context())
		rep := DrainReply{Done: err == nil, Status: st}
		code := http.StatusOK
		if err != nil {
			rep.Error = err.Error()
			code = http.StatusGatewayTimeout
			if errors.Is(err, ErrNotRunning) {
				code = http.StatusServiceUnavailable
			}
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(rep)
	})
	mux.HandleFunc("POST /undrain", func(w http.ResponseWriter, r *http.Request) {
		a.Undrain()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(ControlStatus{
			Node: a.cfg.NodeID, App: a.cfg.App, State: a.State().String(),
			Server: a.Server(), Rejected: a.Rejected(), LastReject: a.LastReject(),
		})
	})
	return mux
}
