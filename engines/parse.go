package engines

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// fracSlack is how far outside 0..1 a fraction may be and still be
// clamped silently (float noise) instead of counted as an anomaly.
const fracSlack = 1e-6

// ParseLoad reads one Prometheus text exposition of the engine's metrics
// (see Adapter.ParseLoad for the errors).
func (d *Dialect) ParseLoad(r io.Reader) (Load, error) {
	m, err := ParseMetrics(r)
	if err != nil {
		return Load{}, fmt.Errorf("%s: %w", d.Name, err)
	}
	return d.LoadFromMetrics(m)
}

// LoadFromMetrics builds a Load from parsed metrics. At least one of
// Running or Waiting must be present, else the error wraps
// ErrNoLoadMetrics; when they are present but every value is out of
// range, it wraps ErrMalformed. Other out-of-range values are dropped
// and counted (Load.Anomalies).
func (d *Dialect) LoadFromMetrics(m Metrics) (Load, error) {
	p := loadParse{d: d, m: m, l: Load{Engine: d.Name, Source: "metrics"}, models: map[string]struct{}{}}
	var runOK, waitOK bool
	p.l.Running, runOK = p.count(d.Running)
	p.l.Waiting, waitOK = p.count(d.Waiting)
	if !p.l.Running.IsKnown() && !p.l.Waiting.IsKnown() {
		if (runOK || waitOK) && p.l.Anomalies > 0 {
			return Load{}, fmt.Errorf("%s: %w: every running/waiting value is out of range: %s", d.Name, ErrMalformed, strings.Join(p.l.Notes, "; "))
		}
		return Load{}, fmt.Errorf("%s: %w: none of %v or %v present", d.Name, ErrNoLoadMetrics, d.Running.families(), d.Waiting.families())
	}
	p.l.KVCache, _ = p.fraction(d.KVCache)
	p.l.PrefixCacheHits, _ = p.count(d.PrefixHits)
	p.l.PrefixCacheQueries, _ = p.count(d.PrefixQueries)
	p.l.PrefixCacheHitRate, _ = p.fraction(d.PrefixHitRate)
	if d.Sleep != nil {
		p.l.Sleep = p.sleep(d.Sleep)
	}
	if d.LoRA != nil {
		p.l.LoRA = p.lora(d.LoRA)
	}
	for k := range p.models {
		p.l.Models = append(p.l.Models, k)
	}
	sort.Strings(p.l.Models)
	return p.l, nil
}

func (s Signal) families() []string {
	out := make([]string, 0, len(s))
	for _, src := range s {
		out = append(out, src.Family)
	}
	return out
}

// point is one series' labels and value.
type point struct {
	labels map[string]string
	v      float64
}

type loadParse struct {
	d      *Dialect
	m      Metrics
	l      Load
	models map[string]struct{}
}

// pick returns the samples of the first present source of sig.
func (p *loadParse) pick(sig Signal) (Source, []point, bool) {
	for _, src := range sig {
		pts := p.samples(src)
		if len(pts) > 0 {
			return src, pts, true
		}
	}
	return Source{}, nil, false
}

// samples returns the samples of one source, divided by Over if set.
func (p *loadParse) samples(src Source) []point {
	num := p.where(src.Family, src.Where)
	if src.Over == nil || len(num) == 0 {
		return num
	}
	den := p.where(src.Over.Family, src.Over.Where)
	byKey := make(map[string]float64, len(den))
	for _, x := range den {
		byKey[labelKey(x.labels, src.Over.Where, nil)] = x.v
	}
	out := num[:0]
	for _, x := range num {
		dv, ok := byKey[labelKey(x.labels, src.Where, nil)]
		if !ok || !(dv > 0) {
			continue
		}
		out = append(out, point{labels: x.labels, v: x.v / dv})
	}
	return out
}

func (p *loadParse) where(family string, where map[string]string) []point {
	ss := p.m.Samples(family)
	out := make([]point, 0, len(ss))
next:
	for _, s := range ss {
		for k, v := range where {
			if s.Labels[k] != v {
				continue next
			}
		}
		out = append(out, point{labels: s.Labels, v: s.Value})
	}
	return out
}

// count sums a count quantity; found reports whether a source was present.
func (p *loadParse) count(sig Signal) (v Value, found bool) {
	src, pts, ok := p.pick(sig)
	if !ok {
		return Unknown, false
	}
	kept := pts[:0]
	for _, x := range pts {
		if x.v < 0 || x.v > MaxCount || math.IsInf(x.v, 0) {
			p.l.note(fmt.Sprintf("%s = %g: not a count, dropped", seriesName(src.Family, x.labels), x.v))
			continue
		}
		kept = append(kept, x)
	}
	kept = p.dedupe(kept)
	if len(kept) == 0 {
		return Unknown, true
	}
	var t float64
	for _, x := range kept {
		t += x.v
		p.addModel(x.labels)
	}
	return Known(t), true
}

// fraction combines a 0..1 quantity: per model by Ranks.KV, then the
// maximum over models.
func (p *loadParse) fraction(sig Signal) (v Value, found bool) {
	src, pts, ok := p.pick(sig)
	if !ok {
		return Unknown, false
	}
	kept := pts[:0]
	for _, x := range pts {
		switch {
		case x.v < -fracSlack || x.v > 1+fracSlack || math.IsInf(x.v, 0):
			p.l.note(fmt.Sprintf("%s = %g: fraction outside 0..1, dropped", seriesName(src.Family, x.labels), x.v))
			continue
		case x.v < 0:
			x.v = 0
		case x.v > 1:
			x.v = 1
		}
		kept = append(kept, x)
	}
	kept = p.dedupe(kept)
	if len(kept) == 0 {
		return Unknown, true
	}
	type acc struct {
		sum, max float64
		n        int
	}
	per := map[string]*acc{}
	for _, x := range kept {
		k := p.modelOf(x.labels)
		a := per[k]
		if a == nil {
			a = &acc{max: math.Inf(-1)}
			per[k] = a
		}
		a.sum += x.v
		a.n++
		a.max = math.Max(a.max, x.v)
		p.addModel(x.labels)
	}
	best := math.Inf(-1)
	for _, a := range per {
		v := a.sum / float64(a.n)
		if p.d.Ranks.KV == Max {
			v = a.max
		}
		best = math.Max(best, v)
	}
	return Known(best), true
}

// dedupe keeps one series per group of series that differ only in the
// Ranks.Same labels: the one with the lowest such label values.
func (p *loadParse) dedupe(pts []point) []point {
	same := p.d.Ranks.Same
	if len(same) == 0 || len(pts) < 2 {
		return pts
	}
	type best struct {
		i    int
		rank []string
	}
	groups := map[string]*best{}
	order := []string{}
	for i, x := range pts {
		k := labelKey(x.labels, nil, same)
		r := make([]string, len(same))
		for j, l := range same {
			r[j] = x.labels[l]
		}
		b := groups[k]
		if b == nil {
			groups[k] = &best{i: i, rank: r}
			order = append(order, k)
			continue
		}
		if rankLess(r, b.rank) {
			b.i, b.rank = i, r
		}
	}
	out := make([]point, 0, len(groups))
	for _, k := range order {
		out = append(out, pts[groups[k].i])
	}
	return out
}

// rankLess orders rank label tuples numerically where both are numbers.
func rankLess(a, b []string) bool {
	for i := range a {
		if a[i] == b[i] {
			continue
		}
		x, ex := strconv.ParseFloat(a[i], 64)
		y, ey := strconv.ParseFloat(b[i], 64)
		if ex == nil && ey == nil {
			return x < y
		}
		return a[i] < b[i]
	}
	return false
}

func (p *loadParse) modelOf(labels map[string]string) string {
	for _, k := range p.d.ModelLabels {
		if v := labels[k]; v != "" {
			return v
		}
	}
	return ""
}

func (p *loadParse) addModel(labels map[string]string) {
	if m := p.modelOf(labels); m != "" {
		p.models[m] = struct{}{}
	}
}

func (p *loadParse) sleep(r *SleepRule) SleepState {
	for _, fam := range r.Families {
		pts := p.where(fam, map[string]string{r.StateLabel: r.Awake})
		if len(pts) == 0 {
			continue
		}
		for _, x := range pts {
			if x.v == 0 {
				return SleepAsleep
			}
		}
		return SleepAwake
	}
	return SleepUnknown
}

func (p *loadParse) lora(r *LoRARule) *LoRA {
	for _, fam := range r.Families {
		pts := p.where(fam, nil)
		if len(pts) == 0 {
			continue
		}
		cur := pts[0]
		for _, x := range pts[1:] {
			if x.v > cur.v {
				cur = x
			}
		}
		l := &LoRA{Running: splitList(cur.labels[r.Running]), Waiting: splitList(cur.labels[r.Waiting]), Max: Unknown}
		if f, err := strconv.ParseFloat(strings.TrimSpace(cur.labels[r.Max]), 64); err == nil && f >= 0 {
			l.Max = Known(f)
		}
		return l
	}
	return nil
}

// splitList splits "a, b,c" into [a b c]; empty gives an empty list.
func splitList(s string) []string {
	out := []string{}
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// labelKey is a canonical string of labels without the keys in drop1 and
// drop2.
func labelKey(labels map[string]string, drop1 map[string]string, drop2 []string) string {
	keys := make([]string, 0, len(labels))
outer:
	for k := range labels {
		if _, ok := drop1[k]; ok {
			continue
		}
		for _, d := range drop2 {
			if k == d {
				continue outer
			}
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(labels[k]))
		b.WriteByte(',')
	}
	return b.String()
}

func seriesName(family string, labels map[string]string) string {
	if len(labels) == 0 {
		return family
	}
	return family + "{" + strings.TrimSuffix(labelKey(labels, nil, nil), ",") + "}"
}
