package engines

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
)

// ParseFallback reads one answer of the dialect's JSON load endpoint
// (Dialect.Fallback): counts summed over ranks, fractions averaged, out
// of range values dropped and counted as in LoadFromMetrics. Errors wrap
// ErrMalformed (bad JSON, a field of the wrong type — the message names
// it), ErrNoLoadMetrics (no rank reports running or waiting) or
// ErrTooLarge.
func (d *Dialect) ParseFallback(r io.Reader) (Load, error) {
	f := d.Fallback
	if f == nil {
		return Load{}, fmt.Errorf("%s: %w: the engine has no JSON load endpoint", d.Name, ErrNoLoadMetrics)
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxInput+1))
	if err != nil {
		return Load{}, fmt.Errorf("%s: %s: read: %w", d.Name, f.Path, err)
	}
	if len(data) > MaxInput {
		return Load{}, fmt.Errorf("%s: %s: %w", d.Name, f.Path, ErrTooLarge)
	}
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return Load{}, fmt.Errorf("%s: %s: %w", d.Name, f.Path, JSONError(data, err))
	}
	if err := dec.Decode(&struct{}{}); err != io.EOF {
		return Load{}, fmt.Errorf("%s: %s: %w: data after the JSON object", d.Name, f.Path, ErrMalformed)
	}
	raw, ok := doc[f.List]
	if !ok {
		return Load{}, fmt.Errorf("%s: %s: %w: no %q array", d.Name, f.Path, ErrMalformed, f.List)
	}
	var ranks []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ranks); err != nil {
		return Load{}, fmt.Errorf("%s: %s: %w: %q: want an array of objects", d.Name, f.Path, ErrMalformed, f.List)
	}
	l := Load{Engine: d.Name, Source: f.Path}
	num := func(i int, key string) (float64, bool, error) {
		v, ok := ranks[i][key]
		if !ok || string(v) == "null" {
			return 0, false, nil
		}
		var x float64
		if err := json.Unmarshal(v, &x); err != nil {
			return 0, false, fmt.Errorf("%s: %s: %w: %s[%d].%s: want a number, got %.20s", d.Name, f.Path, ErrMalformed, f.List, i, key, v)
		}
		return x, true, nil
	}
	type sum struct {
		t  float64
		n  int
		ok bool
	}
	var run, wait, kv, hit sum
	add := func(s *sum, i int, key string, frac bool) error {
		if key == "" {
			return nil
		}
		x, ok, err := num(i, key)
		if err != nil || !ok {
			return err
		}
		name := fmt.Sprintf("%s[%d].%s", f.List, i, key)
		switch {
		case frac && (x < -fracSlack || x > 1+fracSlack):
			l.note(fmt.Sprintf("%s = %g: fraction outside 0..1, dropped", name, x))
			return nil
		case !frac && (x < 0 || x > MaxCount):
			l.note(fmt.Sprintf("%s = %g: not a count, dropped", name, x))
			return nil
		}
		if frac {
			x = math.Min(math.Max(x, 0), 1) // within fracSlack of the range
		}
		s.t += x
		s.n++
		s.ok = true
		return nil
	}
	for i := range ranks {
		for _, q := range []struct {
			s    *sum
			key  string
			frac bool
		}{{&run, f.Running, false}, {&wait, f.Waiting, false}, {&kv, f.KVCache, true}, {&hit, f.HitRate, true}} {
			if err := add(q.s, i, q.key, q.frac); err != nil {
				return Load{}, err
			}
		}
	}
	if !run.ok && !wait.ok {
		if l.Anomalies > 0 {
			return Load{}, fmt.Errorf("%s: %s: %w: every running/waiting value is out of range", d.Name, f.Path, ErrMalformed)
		}
		return Load{}, fmt.Errorf("%s: %s: %w: no rank reports %q or %q", d.Name, f.Path, ErrNoLoadMetrics, f.Running, f.Waiting)
	}
	val := func(s sum, mean bool) Value {
		if !s.ok {
			return Unknown
		}
		if mean {
			return Known(s.t / float64(s.n))
		}
		return Known(s.t)
	}
	l.Running, l.Waiting = val(run, false), val(wait, false)
	l.KVCache, l.PrefixCacheHitRate = val(kv, true), val(hit, true)
	return l, nil
}
