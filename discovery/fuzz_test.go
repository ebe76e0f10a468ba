package discovery

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"
)

var versions = []Version{Version1, Version2, Version3}

func FuzzDecodeHeartbeat(f *testing.F) {
	for _, v := range versions {
		hb := goodBeat()
		f.Add(uint8(v), AppendHeartbeat(nil, &hb, v))
		hb.Load.Utilisation = Known(7.3)
		f.Add(uint8(v), AppendHeartbeat(nil, &hb, v))
		// Unknown quantities and every readiness (version 2 carries them).
		hb.Load = Load{Concurrency: Known(2), Waiting: Known(0), Readiness: ReadinessAsleep}
		f.Add(uint8(v), AppendHeartbeat(nil, &hb, v))
		hb.Load = Load{Readiness: ReadinessBusy}
		f.Add(uint8(v), AppendHeartbeat(nil, &hb, v))
		// Prefix-cache counters and LoRA adapters (version 3 carries them).
		lora, _ := NewAdapters([]string{"sql-lora", "chat-lora"}, []string{"math-lora"})
		hb.Load = Load{Running: Known(3), PrefixCacheHits: Known(1200), PrefixCacheQueries: Known(4000), PrefixCacheHitRate: Known(0.3), LoRA: lora}
		f.Add(uint8(v), AppendHeartbeat(nil, &hb, v))
	}
	f.Add(uint8(2), []byte{})
	f.Add(uint8(1), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, ver uint8, b []byte) {
		if len(b) > MaxAgentFrame {
			return
		}
		v := Version1 + Version(ver%3)
		var hb Heartbeat
		var in Interner
		var view HeartbeatView
		verr := DecodeHeartbeatView(b, &view, v)
		err := DecodeHeartbeat(b, &hb, &in, v)
		noLoRA := hb.Load
		noLoRA.LoRA = Adapters{}
		if err == nil && (verr != nil || string(view.ID) != hb.ID || view.Seq != hb.Seq || view.Load != noLoRA || !hb.Load.LoRA.Is(view.Adapters)) {
			t.Fatalf("view disagrees with the full decoder: %v", verr)
		}
		if err != nil {
			if _, ok := err.(*InputError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		// Anything accepted is valid and re-encodes to the same bytes when
		// it has at most one address (map order).
		if err := hb.Validate(); err != nil {
			t.Fatalf("accepted but invalid: %v", err)
		}
		if v == Version1 && (hb.Load.Readiness != ReadinessUnknown || hb.Load.Running == Known(0) || hb.Load.KVCacheUsage == Known(0)) {
			t.Fatalf("version 1 cannot say readiness or a known 0 queue: %+v", hb.Load)
		}
		if v < Version3 && (hb.Load.PrefixCacheHits.IsKnown() || hb.Load.PrefixCacheQueries.IsKnown() || hb.Load.PrefixCacheHitRate.IsKnown() || hb.Load.LoRA.Known()) {
			t.Fatalf("version %d cannot carry prefix-cache counters or adapters: %+v", v, hb.Load)
		}
		if len(hb.Addresses) == 1 && !bytes.Equal(AppendHeartbeat(nil, &hb, v), b) {
			t.Fatalf("re-encoding differs")
		}
		// JSON carries the same heartbeat, unknowns included.
		js, err := json.Marshal(&hb)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		var back Heartbeat
		err = DecodeHeartbeatJSON(js, &back)
		same := back.Load
		if same.SampledAt.Equal(hb.Load.SampledAt) {
			same.SampledAt = hb.Load.SampledAt // JSON keeps the instant, not the location
		}
		if err != nil || same != hb.Load {
			t.Fatalf("JSON round trip: %v: %+v vs %+v", err, back.Load, hb.Load)
		}
	})
}

func FuzzDecodeHeartbeatJSON(f *testing.F) {
	hb := goodBeat()
	good, _ := json.Marshal(hb)
	f.Add(good)
	f.Add([]byte(`{"id":"x","load":{"utilisation":"7.3"}}`))
	f.Add([]byte(`{"id":"n","app":"a","addresses":{"http":"h:1"},"state":"ready","load":{"running":null,"waiting":0,"readiness":"asleep"}}`))
	f.Add([]byte(`{"id":"n","app":"a","addresses":{"http":"h:1"},"state":"ready","load":{"readiness":"sleepy"}}`))
	f.Add([]byte(`{"accelerator":{"count":-1}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var hb Heartbeat
		err := DecodeHeartbeatJSON(b, &hb)
		if err != nil {
			if _, ok := err.(*InputError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if err := hb.Validate(); err != nil {
			t.Fatalf("accepted but invalid: %v", err)
		}
		// Whatever JSON accepted, both binary versions carry.
		for _, v := range versions {
			var back Heartbeat
			if err := DecodeHeartbeat(AppendHeartbeat(nil, &hb, v), &back, nil, v); err != nil {
				t.Fatalf("version %d: re-decoding an accepted heartbeat: %v", v, err)
			}
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	hb := goodBeat()
	f.Add(AppendHeartbeatFrame(nil, &hb, Version3))
	f.Add(AppendHeartbeatFrame(nil, &hb, Version2))
	f.Add(AppendHeartbeatFrame(nil, &hb, Version1))
	f.Add(AppendHelloFrame(nil, Hello{Role: RoleAgent, Token: "t"}))
	f.Add(AppendRejectFrame(nil, Reject{Reason: ReasonStale, NodeID: "n", Field: "incarnation", Incarnation: 99}, Version2))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		br := bufio.NewReader(bytes.NewReader(b))
		var buf []byte
		for range 16 {
			typ, p, nb, err := ReadFrame(br, MaxAgentFrame, buf)
			buf = nb
			if err != nil {
				return
			}
			for _, v := range versions {
				switch typ {
				case FrameHeartbeat:
					var hb Heartbeat
					_ = DecodeHeartbeat(p, &hb, nil, v)
				case FrameHello:
					_, _ = DecodeHello(p)
				case FrameReject:
					_, _ = DecodeReject(p, v)
				}
			}
		}
	})
}

func FuzzDecodeDelta(f *testing.F) {
	d := Delta{App: "a", Epoch: 1, To: 2, Upserts: []Node{{ID: "n", App: "a", Addresses: map[string]string{"http": "h:1"}, State: StateReady,
		Load: Load{Running: Known(4), Waiting: Known(0), Readiness: ReadinessNotReady}}}, Removes: []string{"m"}}
	for _, v := range versions {
		f.Add(AppendDelta(nil, &d, v))
	}
	lora, _ := NewAdapters([]string{"a"}, nil)
	d.Upserts[0].Load.LoRA, d.Upserts[0].Load.PrefixCacheHits = lora, Known(7)
	f.Add(AppendDelta(nil, &d, Version3))
	f.Add([]byte("D\x01"))
	f.Add([]byte("D\x02"))
	f.Add([]byte("D\x03"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		var d Delta
		if err := DecodeDelta(b, &d, nil); err != nil {
			if _, ok := err.(*InputError); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
		}
	})
}
