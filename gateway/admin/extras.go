package admin

import (
	"net/http"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/shadow"
)

// splitJSON is one route's A/B split in GET /admin/splits. Its counters
// are kept by route and variant name across reloads (split.Registry).
type splitJSON struct {
	Route             string        `json:"route"`
	Buckets           int           `json:"buckets"`
	OverridesRejected int64         `json:"overrides_rejected"`
	Variants          []variantJSON `json:"variants"`
}

type variantJSON struct {
	Name   string `json:"name"`
	Target string `json:"target"`
	// TargetRoute is the route that serves the variant.
	TargetRoute string  `json:"target_route"`
	Weight      float64 `json:"weight"`
	// Share is the fraction of buckets (so of keys) the variant owns.
	Share    float64 `json:"share"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	Tokens   int64   `json:"tokens"`
	// MeanLatency is null before the variant served a request.
	MeanLatency *string `json:"mean_latency"`
}

func (g *server) adminSplits(w http.ResponseWriter, _ *http.Request) {
	out := []splitJSON{}
	for _, r := range g.Core.Routes().Routes() {
		s := r.Splitter()
		if s == nil {
			continue
		}
		cfg := s.Config()
		sj := splitJSON{Route: r.Name(), Buckets: cfg.Buckets, OverridesRejected: s.OverridesRejected(), Variants: []variantJSON{}}
		stats := s.Stats()
		for i := 0; i < s.Len(); i++ {
			v := s.Variant(i)
			vj := variantJSON{Name: v.Name, Target: v.Target, TargetRoute: r.Variant(i).Name(), Weight: v.Weight,
				Requests: stats[i].Requests, Errors: stats[i].Errors, Tokens: stats[i].Tokens}
			if cfg.Buckets > 0 {
				vj.Share = float64(v.Buckets) / float64(cfg.Buckets)
			}
			if n := stats[i].Requests; n > 0 {
				m := dur(stats[i].LatencySum / time.Duration(n))
				vj.MeanLatency = &m
			}
			sj.Variants = append(sj.Variants, vj)
		}
		out = append(out, sj)
	}
	writeJSON(w, http.StatusOK, map[string]any{"splits": out})
}

// shadowJSON is one route's mirror in GET /admin/shadows: the counters
// of shadow.Stats, kept by route name across reloads (shadow.Registry),
// and the last differences of the route's current Mirror. Field values
// (response content) are left out: the admin API's reads need no token,
// and the difference log (shadow.log.path) has them.
type shadowJSON struct {
	Route      string  `json:"route"`
	Target     string  `json:"target"`
	SampleRate float64 `json:"sample_rate_percent"`
	Offered    int64   `json:"offered"`
	Mirrored   int64   `json:"mirrored"`
	Dropped    struct {
		QueueFull    int64 `json:"queue_full"`
		BodyTooLarge int64 `json:"body_too_large"`
		Closed       int64 `json:"closed"`
	} `json:"dropped"`
	Errors struct {
		Timeout          int64 `json:"timeout"`
		Canceled         int64 `json:"canceled"`
		ResponseTooLarge int64 `json:"response_too_large"`
		Send             int64 `json:"send"`
		Panic            int64 `json:"panic"`
	} `json:"errors"`
	Compared          int64            `json:"compared"`
	StatusMismatch    int64            `json:"status_mismatch"`
	CompareSkipped    int64            `json:"compare_skipped"`
	Differences       int64            `json:"differences"`
	Live              int64            `json:"live"`
	Fields            []fieldCountJSON `json:"fields"`
	RecentDifferences []differenceJSON `json:"recent_differences"` // oldest first
	Log               *shadowLogJSON   `json:"log"`                // null without shadow.log.path
}

type fieldCountJSON struct {
	Field      string `json:"field"`
	Mismatches int64  `json:"mismatches"`
}

type shadowLogJSON struct {
	Path    string `json:"path"`
	Written int64  `json:"written"`
	Dropped int64  `json:"dropped"`
	Failed  int64  `json:"failed"`
}

// differenceJSON is one shadow.Report that showed a difference.
type differenceJSON struct {
	Time           time.Time       `json:"time"`
	RequestID      string          `json:"request_id,omitempty"`
	PrimaryStatus  int             `json:"primary_status"`
	ShadowStatus   int             `json:"shadow_status"` // 0 when the shadow failed
	StatusMatch    bool            `json:"status_match"`
	ShadowError    string          `json:"shadow_error,omitempty"`
	PrimaryLatency string          `json:"primary_latency"`
	ShadowLatency  string          `json:"shadow_latency"`
	Skipped        string          `json:"skipped,omitempty"`
	Fields         []fieldDiffJSON `json:"fields"`
}

type fieldDiffJSON struct {
	Field   string   `json:"field"`
	Equal   bool     `json:"equal"`
	Missing string   `json:"missing,omitempty"` // "primary" or "shadow"
	AbsDiff *float64 `json:"abs_diff"`          // numbers only
	RelDiff *float64 `json:"rel_diff"`
}

func differenceOf(r *shadow.Report) differenceJSON {
	d := differenceJSON{Time: r.Time, RequestID: r.RequestID, PrimaryStatus: r.PrimaryStatus, ShadowStatus: r.ShadowStatus,
		StatusMatch: r.StatusMatch, ShadowError: r.ShadowError, PrimaryLatency: dur(r.PrimaryLatency),
		ShadowLatency: dur(r.ShadowLatency), Skipped: r.Skipped, Fields: []fieldDiffJSON{}}
	for _, f := range r.Fields {
		fj := fieldDiffJSON{Field: f.Field, Equal: f.Equal, Missing: f.Missing}
		if f.Numeric {
			a, rel := f.AbsDiff, f.RelDiff
			fj.AbsDiff, fj.RelDiff = &a, &rel
		}
		d.Fields = append(d.Fields, fj)
	}
	return d
}

func (g *server) adminShadows(w http.ResponseWriter, _ *http.Request) {
	out := []shadowJSON{}
	for _, r := range g.Core.Routes().Routes() {
		m := r.Mirror()
		if m == nil {
			continue
		}
		sc := r.Config().Shadow
		st := m.Stats()
		sj := shadowJSON{Route: r.Name(), Target: sc.Target, SampleRate: sc.SampleRate, Offered: st.Offered, Mirrored: st.Mirrored,
			Compared: st.Compared, StatusMismatch: st.StatusMismatch, CompareSkipped: st.CompareSkipped,
			Differences: st.Differences, Live: st.Live, Fields: []fieldCountJSON{}, RecentDifferences: []differenceJSON{}}
		sj.Dropped.QueueFull, sj.Dropped.BodyTooLarge, sj.Dropped.Closed = st.DroppedQueueFull, st.DroppedBodyTooLarge, st.DroppedClosed
		sj.Errors.Timeout, sj.Errors.Canceled, sj.Errors.ResponseTooLarge, sj.Errors.Send, sj.Errors.Panic =
			st.ErrorsTimeout, st.ErrorsCanceled, st.ErrorsResponseTooLarge, st.ErrorsSend, st.Panics
		for i, f := range sc.Compare.Fields {
			if i < len(st.FieldMismatch) {
				sj.Fields = append(sj.Fields, fieldCountJSON{Field: f, Mismatches: st.FieldMismatch[i]})
			}
		}
		if sc.Log.Path != "" {
			sj.Log = &shadowLogJSON{Path: sc.Log.Path, Written: st.LogWritten, Dropped: st.LogDropped, Failed: st.LogFailed}
		}
		for _, rep := range m.Recent() {
			sj.RecentDifferences = append(sj.RecentDifferences, differenceOf(&rep))
		}
		out = append(out, sj)
	}
	writeJSON(w, http.StatusOK, map[string]any{"shadows": out})
}

// tenantsJSON is GET /admin/tenants. Keys are never shown: a tenant is
// known by its name.
type tenantsJSON struct {
	// Enabled is false when the gateway runs without API keys; the rest
	// is then empty.
	Enabled bool `json:"enabled"`
	// Loaded is when the keys in force were read; ReloadError why the
	// last changed file was not taken (the keys from Loaded stay).
	Loaded      *time.Time   `json:"loaded,omitempty"`
	ReloadError string       `json:"reload_error,omitempty"`
	Keys        int          `json:"keys"`
	Tenants     []tenantJSON `json:"tenants"`
}

type tenantJSON struct {
	Name     string `json:"name"`
	Priority string `json:"priority"` // "interactive" or "batch"
	// Limits: 0 means unlimited; models empty means every model.
	Limits struct {
		RequestsPerMinute int64    `json:"requests_per_minute"`
		TokensPerMinute   int64    `json:"tokens_per_minute"`
		MaxConcurrent     int64    `json:"max_concurrent"`
		Models            []string `json:"models"`
	} `json:"limits"`
	// Usage counts since the tenant first appeared in the file.
	Usage struct {
		Admitted           uint64 `json:"admitted"`
		RefusedRequests    uint64 `json:"refused_requests_per_minute"`
		RefusedTokens      uint64 `json:"refused_tokens_per_minute"`
		RefusedConcurrency uint64 `json:"refused_max_concurrent"`
		Tokens             uint64 `json:"tokens"`
		InFlight           int64  `json:"in_flight"`
	} `json:"usage"`
}

func (g *server) adminTenants(w http.ResponseWriter, _ *http.Request) {
	out := tenantsJSON{Tenants: []tenantJSON{}}
	store := g.tenantStore()
	if store == nil {
		writeJSON(w, http.StatusOK, out)
		return
	}
	out.Enabled = true
	if s := store.Status(); !s.Loaded.IsZero() {
		l := s.Loaded
		out.Loaded = &l
		if s.Err != nil {
			out.ReloadError = s.Err.Error()
		}
	}
	set := store.Set()
	out.Keys = set.Keys()
	for _, t := range set.Tenants() {
		tj := tenantJSON{Name: t.Name(), Priority: t.Priority().String()}
		l := t.Limits()
		tj.Limits.RequestsPerMinute, tj.Limits.TokensPerMinute, tj.Limits.MaxConcurrent = l.RequestsPerMinute, l.TokensPerMinute, l.MaxConcurrent
		tj.Limits.Models = l.Models
		if tj.Limits.Models == nil {
			tj.Limits.Models = []string{}
		}
		u := t.Usage()
		tj.Usage.Admitted, tj.Usage.RefusedRequests, tj.Usage.RefusedTokens = u.Admitted, u.RefusedRequests, u.RefusedTokens
		tj.Usage.RefusedConcurrency, tj.Usage.Tokens, tj.Usage.InFlight = u.RefusedConcurrency, u.Tokens, u.InFlight
		out.Tenants = append(out.Tenants, tj)
	}
	writeJSON(w, http.StatusOK, out)
}
