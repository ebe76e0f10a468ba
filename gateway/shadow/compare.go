package shadow

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"time"
)

// Side names one side of a comparison.
type Side string

// Sides.
const (
	SidePrimary Side = "primary"
	SideShadow  Side = "shadow"
)

// FieldDiff is the comparison of one configured field.
type FieldDiff struct {
	// Field is the configured path.
	Field string `json:"field"`
	// Equal is true when the values are equal (numbers: within the
	// configured tolerance).
	Equal bool `json:"equal"`
	// Missing names the side(s) where the field is absent ("primary",
	// "shadow" or "both"); "" when present on both.
	Missing string `json:"missing,omitempty"`
	// Numeric is true when both values are numbers or equally long arrays
	// of numbers; AbsDiff and RelDiff are then the largest element-wise
	// absolute difference |p-s| and relative difference |p-s|/max(|p|,|s|).
	Numeric bool    `json:"numeric,omitempty"`
	AbsDiff float64 `json:"abs_diff,omitempty"`
	RelDiff float64 `json:"rel_diff,omitempty"`
	// Primary and Shadow are the values as compact JSON, truncated to
	// LogConfig.MaxValueBytes.
	Primary string `json:"primary,omitempty"`
	Shadow  string `json:"shadow,omitempty"`
}

// Report is the comparison of one mirrored request. It is handed to the
// report hook (WithReportHook) and, when it shows a difference, to the
// JSONL log.
type Report struct {
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id,omitempty"`
	Route     string    `json:"route,omitempty"`
	Target    string    `json:"target"`
	// Statuses; ShadowStatus is 0 when the shadow failed (ShadowError).
	PrimaryStatus int    `json:"primary_status"`
	ShadowStatus  int    `json:"shadow_status"`
	StatusMatch   bool   `json:"status_match"`
	ShadowError   string `json:"shadow_error,omitempty"`
	// Latencies; the shadow's excludes its time in the queue.
	PrimaryLatency time.Duration `json:"-"`
	ShadowLatency  time.Duration `json:"-"`
	PrimaryMillis  float64       `json:"primary_ms"`
	ShadowMillis   float64       `json:"shadow_ms"`
	// PrimaryStream and ShadowStream tell which sides were SSE streams
	// (their assembled result was compared).
	PrimaryStream bool `json:"primary_stream,omitempty"`
	ShadowStream  bool `json:"shadow_stream,omitempty"`
	// Skipped says why the fields were not compared ("" if they were):
	// "primary_truncated", "shadow_too_large", "primary_not_json",
	// "shadow_not_json", "shadow_error", "no_fields".
	Skipped string      `json:"skipped,omitempty"`
	Fields  []FieldDiff `json:"fields,omitempty"`
}

// Different reports whether the report shows a difference worth logging:
// a shadow error, a status mismatch or a field mismatch.
func (r *Report) Different() bool {
	if r.ShadowError != "" || !r.StatusMatch {
		return true
	}
	for i := range r.Fields {
		if !r.Fields[i].Equal {
			return true
		}
	}
	return false
}

// comparer compares bodies field by field. Immutable after construction.
type comparer struct {
	fields   []FieldPath
	abs, rel float64
	maxValue int
}

// body is one side's captured response.
type body struct {
	contentType []byte
	data        []byte
	truncated   bool
}

func isSSE(contentType []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(bytes.ToLower(contentType)), []byte("text/event-stream"))
}

// document decodes a body: SSE streams are assembled, anything else is
// decoded as JSON.
func document(b body) (doc any, stream bool, err error) {
	if isSSE(b.contentType) {
		d, err := AssembleSSE(b.data)
		return d, true, err
	}
	d, err := decodeJSON(b.data)
	return d, false, err
}

// compareBodies fills r.Fields (or r.Skipped) for primary p and shadow s.
func (c *comparer) compareBodies(r *Report, p, s body) {
	r.PrimaryStream, r.ShadowStream = isSSE(p.contentType), isSSE(s.contentType)
	if len(c.fields) == 0 {
		r.Skipped = "no_fields"
		return
	}
	if p.truncated {
		r.Skipped = "primary_truncated"
		return
	}
	if s.truncated {
		r.Skipped = "shadow_too_large"
		return
	}
	pd, _, err := document(p)
	if err != nil {
		r.Skipped = "primary_not_json"
		return
	}
	sd, _, err := document(s)
	if err != nil {
		r.Skipped = "shadow_not_json"
		return
	}
	r.Fields = make([]FieldDiff, len(c.fields))
	for i, f := range c.fields {
		r.Fields[i] = c.compareField(f, pd, sd)
	}
}

func (c *comparer) compareField(f FieldPath, pd, sd any) FieldDiff {
	d := FieldDiff{Field: f.String()}
	pv, pok := f.Lookup(pd)
	sv, sok := f.Lookup(sd)
	switch {
	case !pok && !sok:
		d.Missing, d.Equal = "both", true
		return d
	case !pok:
		d.Missing = "primary"
	case !sok:
		d.Missing = "shadow"
	}
	if pok {
		d.Primary = c.render(pv)
	}
	if sok {
		d.Shadow = c.render(sv)
	}
	if d.Missing != "" {
		return d
	}
	if pa, sa, ok := numbers(pv, sv); ok {
		d.Numeric = true
		d.Equal = true
		for i := range pa {
			a, b := pa[i], sa[i]
			ad := math.Abs(a - b)
			rd := 0.0
			if m := math.Max(math.Abs(a), math.Abs(b)); m > 0 {
				rd = ad / m
			}
			if a != b && (math.IsNaN(ad) || math.IsInf(ad, 0)) {
				ad, rd = math.Inf(1), math.Inf(1)
			}
			d.AbsDiff = math.Max(d.AbsDiff, ad)
			d.RelDiff = math.Max(d.RelDiff, rd)
			// Like numpy.isclose: |a-b| <= abs + rel*max(|a|,|b|).
			if a != b && !(ad <= c.abs+c.rel*math.Max(math.Abs(a), math.Abs(b))) {
				d.Equal = false
			}
		}
		if math.IsInf(d.AbsDiff, 0) {
			// Not representable in JSON; the log says "inf" through the
			// values themselves.
			d.AbsDiff, d.RelDiff = math.MaxFloat64, math.MaxFloat64
		}
		return d
	}
	d.Equal = canonical(pv) == canonical(sv)
	return d
}

// numbers returns both values as float slices when both are numbers or
// equally long non-empty arrays of numbers.
func numbers(p, s any) ([]float64, []float64, bool) {
	if pn, ok := p.(json.Number); ok {
		sn, ok := s.(json.Number)
		if !ok {
			return nil, nil, false
		}
		a, err1 := strconv.ParseFloat(string(pn), 64)
		b, err2 := strconv.ParseFloat(string(sn), 64)
		if err1 != nil || err2 != nil {
			return nil, nil, false
		}
		return []float64{a}, []float64{b}, true
	}
	pa, ok1 := p.([]any)
	sa, ok2 := s.([]any)
	if !ok1 || !ok2 || len(pa) != len(sa) || len(pa) == 0 {
		return nil, nil, false
	}
	pf, sf := make([]float64, len(pa)), make([]float64, len(sa))
	for i := range pa {
		a, ok1 := pa[i].(json.Number)
		b, ok2 := sa[i].(json.Number)
		if !ok1 || !ok2 {
			return nil, nil, false
		}
		var err1, err2 error
		pf[i], err1 = strconv.ParseFloat(string(a), 64)
		sf[i], err2 = strconv.ParseFloat(string(b), 64)
		if err1 != nil || err2 != nil {
			return nil, nil, false
		}
	}
	return pf, sf, true
}

// canonical renders a decoded value as compact JSON with sorted keys.
func canonical(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "\x00unrenderable"
	}
	return string(b)
}

func (c *comparer) render(v any) string {
	return truncate(canonical(v), c.maxValue)
}

// truncate cuts s to at most n bytes on a UTF-8 boundary and marks the cut.
func truncate(s string, n int) string {
	if n <= 0 || len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut < len(s) && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}
