package discovery

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestAdapters: a set is canonical (sorted, without repeats), compares
// with ==, and a list too long or a bad name is refused naming the field.
func TestAdapters(t *testing.T) {
	a, err := NewAdapters([]string{"b", "a", "b"}, []string{"c"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewAdapters([]string{"a", "b"}, []string{"c", "c"})
	if a != b || !a.Known() || a.Len() != 3 {
		t.Fatalf("equal sets differ: %q vs %q", a.enc, b.enc)
	}
	if got := a.Running(); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("running %v", got)
	}
	if got := a.Waiting(); !slices.Equal(got, []string{"c"}) {
		t.Errorf("waiting %v", got)
	}
	none, _ := NewAdapters(nil, nil)
	if !none.Known() || none.Len() != 0 || none == (Adapters{}) {
		t.Errorf("a known empty set must differ from unknown")
	}
	if (Adapters{}).Known() || (Adapters{}).Running() != nil {
		t.Errorf("the zero Adapters must be unknown")
	}
	many := make([]string, MaxAdapters+1)
	for i := range many {
		many[i] = "lora-" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + itoa(i)
	}
	for _, tc := range []struct {
		name             string
		running, waiting []string
		field            string
		reason           Reason
	}{
		{"too many running", many, nil, "load.lora.running", ReasonOversized},
		{"too many together", many[:40], many[40:], "load.lora.waiting", ReasonOversized},
		{"long name", []string{strings.Repeat("n", MaxAdapterNameLen+1)}, nil, "load.lora.running", ReasonOversized},
		{"comma", nil, []string{"a,b"}, "load.lora.waiting", ReasonInvalid},
		{"space", []string{"a b"}, nil, "load.lora.running", ReasonInvalid},
		{"empty", []string{""}, nil, "load.lora.running", ReasonInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewAdapters(tc.running, tc.waiting)
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field != tc.field || ie.Reason != tc.reason {
				t.Fatalf("got %v, want %s on %s", err, tc.reason, tc.field)
			}
		})
	}
	if _, err := NewAdapters(many[:MaxAdapters/2], many[MaxAdapters/2:MaxAdapters]); err != nil {
		t.Errorf("exactly MaxAdapters names: %v", err)
	}
	// What an engine reports is kept as far as it is valid.
	got, dropped := AdaptersOf(append([]string{"a,b"}, many...), []string{"late"})
	if dropped != 3 || got.Len() != MaxAdapters || len(got.Waiting()) != 0 {
		t.Errorf("AdaptersOf: %d dropped, %d kept, waiting %v", dropped, got.Len(), got.Waiting())
	}
	got, dropped = AdaptersOf([]string{"ok", "bad name"}, []string{"w"})
	if dropped != 1 || !slices.Equal(got.Running(), []string{"ok"}) || !slices.Equal(got.Waiting(), []string{"w"}) {
		t.Errorf("AdaptersOf: %d dropped, %v / %v", dropped, got.Running(), got.Waiting())
	}
}

func itoa(i int) string {
	if i < 10 {
		return string(rune('0' + i))
	}
	return itoa(i/10) + string(rune('0'+i%10))
}

// TestWireVersion3: version 3 carries the prefix-cache counters, the hit
// rate and the adapters on heartbeats and deltas; versions 1 and 2 drop
// them (an old receiver never sees them) and a version-2 sender's load
// reads them as unknown.
func TestWireVersion3(t *testing.T) {
	lora, err := NewAdapters([]string{"sql-lora"}, []string{"chat-lora", "math-lora"})
	if err != nil {
		t.Fatal(err)
	}
	load := Load{Running: Known(2), Waiting: Known(0), PrefixCacheHits: Known(1500), PrefixCacheQueries: Known(6000),
		PrefixCacheHitRate: Known(0.25), LoRA: lora, Readiness: ReadinessReady}
	hb := goodBeat()
	hb.Load = load
	var got Heartbeat
	if err := DecodeHeartbeat(AppendHeartbeat(nil, &hb, Version3), &got, nil, Version3); err != nil {
		t.Fatal(err)
	}
	if got.Load != load {
		t.Fatalf("version 3: got %+v want %+v", got.Load, load)
	}
	var view HeartbeatView
	if err := DecodeHeartbeatView(AppendHeartbeat(nil, &hb, Version3), &view, Version3); err != nil {
		t.Fatal(err)
	}
	if !lora.Is(view.Adapters) || view.Load.LoRA.Known() || view.Load.PrefixCacheHits != Known(1500) {
		t.Fatalf("view: %+v adapters %q", view.Load, view.Adapters)
	}
	for _, v := range []Version{Version1, Version2} {
		got = Heartbeat{}
		if err := DecodeHeartbeat(AppendHeartbeat(nil, &hb, v), &got, nil, v); err != nil {
			t.Fatal(err)
		}
		l := got.Load
		if l.PrefixCacheHits.IsKnown() || l.PrefixCacheQueries.IsKnown() || l.PrefixCacheHitRate.IsKnown() || l.LoRA.Known() || l.Waiting.IsKnown() != (v == Version2) {
			t.Fatalf("version %d: %+v", v, l)
		}
		// A version-2 load read by a version-3 receiver: the new fields
		// are unknown, the rest as sent.
		d := Delta{App: "a", Epoch: 1, To: 1, Upserts: []Node{{ID: "n", App: "a", Addresses: map[string]string{"http": "h:1"}, State: StateReady, Load: load}}}
		var dl Delta
		if err := DecodeDelta(AppendDelta(nil, &d, v), &dl, nil); err != nil {
			t.Fatal(err)
		}
		if l := dl.Upserts[0].Load; l.LoRA.Known() || l.PrefixCacheQueries.IsKnown() || l.Running != Known(2) {
			t.Fatalf("version %d delta: %+v", v, l)
		}
	}
	d := Delta{App: "a", Epoch: 1, To: 1, Upserts: []Node{{ID: "n", App: "a", Addresses: map[string]string{"http": "h:1"}, State: StateReady, Load: load}}}
	var dl Delta
	if err := DecodeDelta(AppendDelta(nil, &d, Version3), &dl, nil); err != nil || dl.Upserts[0].Load != load {
		t.Fatalf("version 3 delta: %v %+v", err, dl.Upserts[0].Load)
	}
	// Version 2 refuses the bits version 3 added.
	b := AppendHeartbeat(nil, &hb, Version3)
	var ie *InputError
	if err := DecodeHeartbeat(b, &got, nil, Version2); !errors.As(err, &ie) || ie.Field != "load.known" {
		t.Fatalf("version-3 bits read as version 2: %v", err)
	}
	// Out-of-range counters and rates are named.
	for field, l := range map[string]Load{
		"load.prefix_cache_hits":     {PrefixCacheHits: Known(-1)},
		"load.prefix_cache_queries":  {PrefixCacheQueries: Known(2 * MaxCounter)},
		"load.prefix_cache_hit_rate": {PrefixCacheHitRate: Known(1.5)},
	} {
		bad := goodBeat()
		bad.Load = l
		if err := DecodeHeartbeat(AppendHeartbeat(nil, &bad, Version3), &got, nil, Version3); !errors.As(err, &ie) || ie.Field != field {
			t.Errorf("%s: %v", field, err)
		}
	}
	// A non-canonical or oversized adapters encoding is refused, naming
	// the field.
	for name, raw := range map[string][]byte{
		"unsorted": appendNames(appendNames(nil, []string{"b", "a"}), nil),
		"repeated": appendNames(appendNames(nil, []string{"a", "a"}), nil),
		"comma":    appendNames(appendNames(nil, nil), []string{"a,b"}),
		"trailing": append(appendNames(appendNames(nil, nil), nil), 0),
	} {
		if _, err := decodeAdapters(raw); !errors.As(err, &ie) || !strings.HasPrefix(ie.Field, "load.lora") && ie.Reason != ReasonMalformed {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestAdaptersJSON: JSON carries the adapters as two lists (omitted when
// unknown), made canonical on the way in; bad input names the field.
func TestAdaptersJSON(t *testing.T) {
	hb := goodBeat()
	js, _ := json.Marshal(&hb)
	if strings.Contains(string(js), `"lora"`) {
		t.Errorf("unknown adapters in JSON: %s", js)
	}
	if !strings.Contains(string(js), `"prefix_cache_hits":null`) {
		t.Errorf("unknown counter not null: %s", js)
	}
	hb.Load.LoRA, _ = NewAdapters([]string{"x"}, nil)
	hb.Load.PrefixCacheHits = Known(10)
	js, _ = json.Marshal(&hb)
	if !strings.Contains(string(js), `"lora":{"running":["x"],"waiting":[]}`) || !strings.Contains(string(js), `"prefix_cache_hits":10`) {
		t.Errorf("JSON: %s", js)
	}
	var got Heartbeat
	body := strings.Replace(string(js), `"running":["x"]`, `"running":["y","x","y"]`, 1)
	if err := DecodeHeartbeatJSON([]byte(body), &got); err != nil || !slices.Equal(got.Load.LoRA.Running(), []string{"x", "y"}) {
		t.Fatalf("canonical from JSON: %v %v", err, got.Load.LoRA.Running())
	}
	var ie *InputError
	for body, field := range map[string]string{
		strings.Replace(string(js), `"running":["x"]`, `"running":["a,b"]`, 1):             "load.lora.running",
		strings.Replace(string(js), `"running":["x"]`, `"running":"x"`, 1):                 "load.lora",
		strings.Replace(string(js), `"prefix_cache_hits":10`, `"prefix_cache_hits":-3`, 1): "load.prefix_cache_hits",
	} {
		if err := DecodeHeartbeatJSON([]byte(body), &got); !errors.As(err, &ie) || ie.Field != field {
			t.Errorf("%s: got %v, want field %s", body, err, field)
		}
	}
}
