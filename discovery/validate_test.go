package discovery

import (
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
		State: StateReady, Load: Load{Utilisation: 0.5, Concurrency: 3, Running: 3, Waiting: 1, KVCacheUsage: 0.2, SampledAt: time.Unix(1700000000, 0)},
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
		{"utilisation 7.3", func(h *Heartbeat) { h.Load.Utilisation = 7.3 }, "load.utilisation", ReasonInvalid},
		{"utilisation NaN", func(h *Heartbeat) { h.Load.Utilisation = math.NaN() }, "load.utilisation", ReasonInvalid},
		{"capacity Inf", func(h *Heartbeat) { h.Capacity = math.Inf(1) }, "capacity", ReasonInvalid},
		{"negative capacity", func(h *Heartbeat) { h.Capacity = -1 }, "capacity", ReasonInvalid},
		{"negative concurrency", func(h *Heartbeat) { h.Load.Concurrency = -2 }, "load.concurrency", ReasonInvalid},
		{"negative waiting", func(h *Heartbeat) { h.Load.Waiting = -2 }, "load.waiting", ReasonInvalid},
		{"kv 1.5", func(h *Heartbeat) { h.Load.KVCacheUsage = 1.5 }, "load.kv_cache_usage", ReasonInvalid},
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
				if hb.Load.Utilisation != 0.5 || hb.Accelerator.Count != 8 || hb.State != StateReady {
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
	hb := goodBeat()
	frame := AppendHeartbeatFrame(nil, &hb)
	if frame[4] != FrameHeartbeat {
		t.Fatal("frame type")
	}
	var got Heartbeat
	var in Interner
	if err := DecodeHeartbeat(frame[5:], &got, &in); err != nil {
		t.Fatal(err)
	}
	if got.ID != hb.ID || got.Addresses["grpc"] != hb.Addresses["grpc"] || got.Load != hb.Load || got.Seq != 7 || got.Accelerator != hb.Accelerator {
		t.Fatalf("round trip: got %+v want %+v", got, hb)
	}
	// Invalid values survive decoding and are named by validation.
	hb.Accelerator.Count = -3
	frame = AppendHeartbeatFrame(nil, &hb)
	err := DecodeHeartbeat(frame[5:], &got, nil)
	var ie *InputError
	if !errors.As(err, &ie) || ie.Field != "accelerator.count" {
		t.Fatalf("negative cards: %v", err)
	}
	// Truncations are malformed, never a panic.
	good := AppendHeartbeat(nil, &Heartbeat{ID: "a", App: "b", Addresses: map[string]string{"http": "h:1"}, State: StateReady})
	for i := range good {
		if err := DecodeHeartbeat(good[:i], &got, nil); ReasonOf(err) != ReasonMalformed {
			t.Fatalf("truncated at %d: %v", i, err)
		}
	}
}

func TestDeltaRoundTrip(t *testing.T) {
	d := Delta{App: "llama", Epoch: 9, From: 3, To: 5, Upserts: []Node{{
		ID: "n1", App: "llama", Addresses: map[string]string{"http": "h:1"}, State: StateDraining,
		Load: Load{Utilisation: 0.3}, LastHeard: time.Unix(5, 0), Version: 5,
	}}, Removes: []string{"n2"}}
	var got Delta
	if err := DecodeDelta(AppendDelta(nil, &d), &got, nil); err != nil {
		t.Fatal(err)
	}
	if got.App != d.App || got.To != 5 || len(got.Upserts) != 1 || got.Upserts[0].State != StateDraining ||
		!got.Upserts[0].LastHeard.Equal(d.Upserts[0].LastHeard) || got.Removes[0] != "n2" {
		t.Fatalf("got %+v", got)
	}
}
