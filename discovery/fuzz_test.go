package discovery

import (
	"bufio"
	"bytes"
	"encoding/json"
	"testing"
)

func FuzzDecodeHeartbeat(f *testing.F) {
	hb := goodBeat()
	f.Add(AppendHeartbeat(nil, &hb))
	hb.Load.Utilisation = 7.3
	f.Add(AppendHeartbeat(nil, &hb))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > MaxAgentFrame {
			return
		}
		var hb Heartbeat
		var in Interner
		var v HeartbeatView
		verr := DecodeHeartbeatView(b, &v)
		err := DecodeHeartbeat(b, &hb, &in)
		if err == nil && (verr != nil || string(v.ID) != hb.ID || v.Seq != hb.Seq || v.Load != hb.Load) {
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
		if len(hb.Addresses) == 1 && !bytes.Equal(AppendHeartbeat(nil, &hb), b) {
			t.Fatalf("re-encoding differs")
		}
	})
}

func FuzzDecodeHeartbeatJSON(f *testing.F) {
	hb := goodBeat()
	good, _ := json.Marshal(hb)
	f.Add(good)
	f.Add([]byte(`{"id":"x","load":{"utilisation":"7.3"}}`))
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
	})
}

func FuzzReadFrame(f *testing.F) {
	hb := goodBeat()
	f.Add(AppendHeartbeatFrame(nil, &hb))
	f.Add(AppendHelloFrame(nil, Hello{Role: RoleAgent, Token: "t"}))
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
			switch typ {
			case FrameHeartbeat:
				var hb Heartbeat
				_ = DecodeHeartbeat(p, &hb, nil)
			case FrameHello:
				_, _ = DecodeHello(p)
			case FrameReject:
				_, _ = DecodeReject(p)
			}
		}
	})
}

func FuzzDecodeDelta(f *testing.F) {
	d := Delta{App: "a", Epoch: 1, To: 2, Upserts: []Node{{ID: "n", App: "a", Addresses: map[string]string{"http": "h:1"}, State: StateReady}}, Removes: []string{"m"}}
	f.Add(AppendDelta(nil, &d))
	f.Add([]byte("D\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		var d Delta
		_ = DecodeDelta(b, &d, nil)
	})
}
