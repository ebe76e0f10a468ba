package discovery

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func goodBeat() Heartbeat {
	return Heartbeat{
		ID: "node-1", App: "llama", Addresses: map[string]string{"http": "10.0.0.1:8000", "grpc": "10.0.0.1:8001"},
		Engine: "vllm", Accelerator: Accelerator{Model: "H100", Count: 8}, Capacity: 8,
		State: StateReady, Load: Load{Utilisation: Known(0.5), Concurrency: Known(3), Running: Known(3), Waiting: Known(1), KVCacheUsage: Known(0.2), Readiness: ReadinessReady, SampledAt: time.Unix(1700000000, 0)},
		Incarnation: 42, Seq: 7,
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*Heartbeat)
		field  string
		reason Reason
	}{
		{"ok", func(*Heartbeat) {}, "", 0},
		{"vendor model name with spaces", func(h *Heartbeat) { h.Accelerator.Model = "NVIDIA H100 80GB HBM3" }, "", 0},
		{"model with trailing space", func(h *Heartbeat) { h.Accelerator.Model = "H100 " }, "accelerator.model", ReasonInvalid},
		{"model with a newline", func(h *Heartbeat) { h.Accelerator.Model = "H100\nx" }, "accelerator.model", ReasonInvalid},
		{"empty id", func(h *Heartbeat) { h.ID = "" }, "id", ReasonInvalid},
		{"id with space", func(h *Heartbeat) { h.ID = "a b" }, "id", ReasonInvalid},
		{"long id", func(h *Heartbeat) { h.ID = strings.Repeat("x", 300) }, "id", ReasonOversized},
		{"empty app", func(h *Heartbeat) { h.App = "" }, "app", ReasonInvalid},
		{"no addresses", func(h *Heartbeat) { h.Addresses = nil }, "addresses", ReasonInvalid},
		{"address not host:port", func(h *Heartbeat) { h.Addresses = map[string]string{"http": "10.0.0.1"} }, "addresses.http", ReasonInvalid},
		{"address port 0", func(h *Heartbeat) { h.Addresses = map[string]string{"http": "h:0"} }, "addresses.http", ReasonInvalid},
		{"address port text", func(h *Heartbeat) { h.Addresses = map[string]string{"http": "h:http"} }, "addresses.http", ReasonInvalid},
		{"address empty host", func(h *Heartbeat) { h.Addresses = map[string]string{"http": ":80"} }, "addresses.http", ReasonInvalid},
		{"negative cards", func(h *Heartbeat) { h.Accelerator.Count = -1 }, "accelerator.count", ReasonInvalid},
		{"too many cards", func(h *Heartbeat) { h.Accelerator.Count = 100000 }, "accelerator.count", ReasonInvalid},
		{"utilisation 7.3", func(h *Heartbeat) { h.Load.Utilisation = Known(7.3) }, "load.utilisation", ReasonInvalid},
		{"utilisation NaN", func(h *Heartbeat) { h.Load.Utilisation = Value{v: math.NaN(), ok: true} }, "load.utilisation", ReasonInvalid},
		{"capacity Inf", func(h *Heartbeat) { h.Capacity = math.Inf(1) }, "capacity", ReasonInvalid},
		{"negative capacity", func(h *Heartbeat) { h.Capacity = -1 }, "capacity", ReasonInvalid},
		{"negative concurrency", func(h *Heartbeat) { h.Load.Concurrency = Known(-2) }, "load.concurrency", ReasonInvalid},
		{"negative waiting", func(h *Heartbeat) { h.Load.Waiting = Known(-2) }, "load.waiting", ReasonInvalid},
		{"kv 1.5", func(h *Heartbeat) { h.Load.KVCacheUsage = Known(1.5) }, "load.kv_cache_usage", ReasonInvalid},
		{"state suspect", func(h *Heartbeat) { h.State = StateSuspect }, "state", ReasonInvalid},
		{"state unknown", func(h *Heartbeat) { h.State = StateUnknown }, "state", ReasonInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hb := goodBeat()
			tc.mod(&hb)
			err := hb.Validate()
			if tc.field == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("want *InputError, got %v", err)
			}
			if ie.Field != tc.field || ie.Reason != tc.reason {
				t.Fatalf("got field %q reason %s (%v), want field %q reason %s", ie.Field, ie.Reason, err, tc.field, tc.reason)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Fatalf("error %q does not name the field", err)
			}
		})
	}
}

func TestDecodeHeartbeatJSON(t *testing.T) {
	good := `{"id":"n1","app":"llama","addresses":{"http":"127.0.0.1:8000"},"engine":"vllm",
		"accelerator":{"model":"H100","count":8},"capacity":8,"state":"ready",
		"load":{"utilisation":0.5,"concurrency":2,"running":2,"waiting":0,"kv_cache_usage":0.1},"incarnation":1,"seq":2}`
	tests := []struct {
		name   string
		body   string
		field  string
		reason Reason
	}{
		{"ok", good, "", 0},
		{"empty", ``, "", ReasonMalformed},
		{"not json", `hello`, "", ReasonMalformed},
		{"truncated", good[:40], "", ReasonMalformed},
		{"trailing", good + `{}`, "", ReasonMalformed},
		{"utilisation string", strings.Replace(good, `"utilisation":0.5`, `"utilisation":"high"`, 1), "load.utilisation", ReasonWrongType},
		{"count string", strings.Replace(good, `"count":8`, `"count":"eight"`, 1), "accelerator.count", ReasonWrongType},
		{"utilisation 7.3", strings.Replace(good, `"utilisation":0.5`, `"utilisation":7.3`, 1), "load.utilisation", ReasonInvalid},
		{"negative cards", strings.Replace(good, `"count":8`, `"count":-2`, 1), "accelerator.count", ReasonInvalid},
		{"bad state", strings.Replace(good, `"ready"`, `"sleepy"`, 1), "state", ReasonInvalid},
		{"state number", strings.Replace(good, `"ready"`, `3`, 1), "state", ReasonWrongType},
		{"missing id", strings.Replace(good, `"id":"n1",`, ``, 1), "id", ReasonInvalid},
		{"negative seq", strings.Replace(good, `"seq":2`, `"seq":-2`, 1), "seq", ReasonWrongType},
		{"oversized", `{"id":"` + strings.Repeat("x", MaxHeartbeatBytes) + `"}`, "", ReasonOversized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hb Heartbeat
			err := DecodeHeartbeatJSON([]byte(tc.body), &hb)
			if tc.name == "ok" {
				if err != nil {
					t.Fatal(err)
				}
				if hb.Load.Utilisation != Known(0.5) || hb.Accelerator.Count != 8 || hb.State != StateReady {
					t.Fatalf("decoded %+v", hb)
				}
				return
			}
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("want *InputError, got %v", err)
			}
			if ie.Reason != tc.reason || (tc.field != "" && ie.Field != tc.field) {
				t.Fatalf("got %v (field %q reason %s), want field %q reason %s", err, ie.Field, ie.Reason, tc.field, tc.reason)
			}
		})
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	for _, v := range versions {
		hb := goodBeat()
		frame := AppendHeartbeatFrame(nil, &hb, v)
		if frame[4] != FrameHeartbeat {
			t.Fatal("frame type")
		}
		var got Heartbeat
		var in Interner
		if err := DecodeHeartbeat(frame[5:], &got, &in, v); err != nil {
			t.Fatal(err)
		}
		want := hb.Load
		if v == Version1 {
			want.Readiness = ReadinessUnknown // version 1 cannot say it
		}
		if got.ID != hb.ID || got.Addresses["grpc"] != hb.Addresses["grpc"] || got.Load != want || got.Seq != 7 || got.Accelerator != hb.Accelerator {
			t.Fatalf("version %d round trip: got %+v want %+v", v, got, hb)
		}
		// Invalid values survive decoding and are named by validation.
		hb.Accelerator.Count = -3
		frame = AppendHeartbeatFrame(nil, &hb, v)
		err := DecodeHeartbeat(frame[5:], &got, nil, v)
		var ie *InputError
		if !errors.As(err, &ie) || ie.Field != "accelerator.count" {
			t.Fatalf("negative cards: %v", err)
		}
		// A NaN on the wire is rejected naming the field (Known(NaN) is
		// unknown, so only the decoder can meet one).
		hb = goodBeat()
		hb.Load.KVCacheUsage = Value{v: math.NaN(), ok: true}
		err = DecodeHeartbeat(AppendHeartbeat(nil, &hb, v), &got, nil, v)
		if !errors.As(err, &ie) || ie.Field != "load.kv_cache_usage" || ie.Reason != ReasonInvalid {
			t.Fatalf("version %d: NaN KV-cache usage: %v", v, err)
		}
		// Truncations are malformed, never a panic.
		good := AppendHeartbeat(nil, &Heartbeat{ID: "a", App: "b", Addresses: map[string]string{"http": "h:1"}, State: StateReady}, v)
		for i := range good {
			if err := DecodeHeartbeat(good[:i], &got, nil, v); ReasonOf(err) != ReasonMalformed {
				t.Fatalf("truncated at %d: %v", i, err)
			}
		}
	}
}

// TestUnknownEndToEnd: unknown stays distinct from 0 on every encoding
// (issue 13), and a version-1 sender (which said 0 for "not reported")
// reads as unknown where it could not have meant a real 0.
func TestUnknownEndToEnd(t *testing.T) {
	load := Load{Utilisation: Known(0), Running: Known(0), Waiting: Known(5), Readiness: ReadinessAsleep}
	hb := goodBeat()
	hb.Load = load
	// Version 2 binary.
	var got Heartbeat
	if err := DecodeHeartbeat(AppendHeartbeat(nil, &hb, Version2), &got, nil, Version2); err != nil {
		t.Fatal(err)
	}
	if got.Load != load {
		t.Fatalf("version 2: got %+v want %+v", got.Load, load)
	}
	if got.Load.Concurrency.IsKnown() || got.Load.KVCacheUsage.IsKnown() || !got.Load.Running.IsKnown() {
		t.Fatalf("version 2 mixed up known and unknown: %+v", got.Load)
	}
	// JSON: unknown is null (or absent), 0 is 0.
	js, _ := json.Marshal(&hb)
	if !strings.Contains(string(js), `"concurrency":null`) || !strings.Contains(string(js), `"running":0`) || !strings.Contains(string(js), `"readiness":"asleep"`) {
		t.Fatalf("JSON: %s", js)
	}
	got = Heartbeat{}
	if err := DecodeHeartbeatJSON(js, &got); err != nil || got.Load != load {
		t.Fatalf("JSON round trip: %v %+v", err, got.Load)
	}
	// An old JSON sender without the new fields: they read as unknown.
	old := `{"id":"n1","app":"llama","addresses":{"http":"127.0.0.1:8000"},"state":"ready","load":{"utilisation":0.5}}`
	got = Heartbeat{}
	if err := DecodeHeartbeatJSON([]byte(old), &got); err != nil {
		t.Fatal(err)
	}
	if got.Load.Utilisation != Known(0.5) || got.Load.Running.IsKnown() || got.Load.KVCacheUsage.IsKnown() || got.Load.Readiness != ReadinessUnknown {
		t.Fatalf("old JSON sender: %+v", got.Load)
	}
	// Version 1 (an old agent): running/waiting/KV 0 meant "not reported".
	v1 := hb
	v1.Load = Load{Utilisation: Known(0.2), Concurrency: Known(0), Running: Known(0), Waiting: Known(3), KVCacheUsage: Known(0)}
	got = Heartbeat{}
	if err := DecodeHeartbeat(AppendHeartbeat(nil, &v1, Version1), &got, nil, Version1); err != nil {
		t.Fatal(err)
	}
	want := Load{Utilisation: Known(0.2), Concurrency: Known(0), Waiting: Known(3)}
	if got.Load != want {
		t.Fatalf("version 1: got %+v want %+v", got.Load, want)
	}
	// A version-1 consumer of a version-2 list gets 0 for unknown (all it
	// can read).
	d := Delta{App: "a", Epoch: 1, To: 1, Upserts: []Node{{ID: "n", App: "a", Addresses: map[string]string{"http": "h:1"}, State: StateReady, Load: load}}}
	var dl Delta
	if err := DecodeDelta(AppendDelta(nil, &d, Version1), &dl, nil); err != nil {
		t.Fatal(err)
	}
	if dl.Upserts[0].Load.Waiting != Known(5) || dl.Upserts[0].Load.Concurrency != Known(0) {
		t.Fatalf("version 1 delta: %+v", dl.Upserts[0].Load)
	}
	if err := DecodeDelta(AppendDelta(nil, &d, Version2), &dl, nil); err != nil || dl.Upserts[0].Load != load {
		t.Fatalf("version 2 delta: %v %+v", err, dl.Upserts[0].Load)
	}
	// Bad readiness and unknown known-bits are named.
	bad := goodBeat()
	bad.Load.Readiness = 9
	var ie *InputError
	if err := DecodeHeartbeat(AppendHeartbeat(nil, &bad, Version2), &got, nil, Version2); !errors.As(err, &ie) || ie.Field != "load.readiness" {
		t.Fatalf("readiness 9: %v", err)
	}
	if err := DecodeHeartbeatJSON([]byte(strings.Replace(old, `"utilisation":0.5`, `"readiness":"sleepy"`, 1)), &got); !errors.As(err, &ie) || ie.Field != "load.readiness" {
		t.Fatalf("readiness sleepy: %v", err)
	}
	if err := DecodeHeartbeatJSON([]byte(strings.Replace(old, `"utilisation":0.5`, `"running":"many"`, 1)), &got); !errors.As(err, &ie) || ie.Field != "load.running" || ie.Reason != ReasonWrongType {
		t.Fatalf("running string: %v", err)
	}
}

func TestDeltaRoundTrip(t *testing.T) {
	d := Delta{App: "llama", Epoch: 9, From: 3, To: 5, Upserts: []Node{{
		ID: "n1", App: "llama", Addresses: map[string]string{"http": "h:1"}, State: StateDraining,
		Load: Load{Utilisation: Known(0.3)}, LastHeard: time.Unix(5, 0), Version: 5,
	}}, Removes: []string{"n2"}}
	for _, v := range versions {
		var got Delta
		if err := DecodeDelta(AppendDelta(nil, &d, v), &got, nil); err != nil {
			t.Fatal(err)
		}
		if got.App != d.App || got.To != 5 || len(got.Upserts) != 1 || got.Upserts[0].State != StateDraining ||
			!got.Upserts[0].LastHeard.Equal(d.Upserts[0].LastHeard) || got.Removes[0] != "n2" || got.Upserts[0].Load.Utilisation != Known(0.3) {
			t.Fatalf("version %d: got %+v", v, got)
		}
	}
}
