package route

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/switchyard-dev/switchyard/engines/kserve"
)

func TestScanJSON(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		model  string
		has    bool
		stream bool
		err    error
	}{
		{name: "simple", body: `{"model":"llama"}`, model: "llama", has: true},
		{name: "spaces", body: " \n{ \"model\" :\t\"a b\" , \"stream\" : true }\r\n", model: "a b", has: true, stream: true},
		{name: "stream false", body: `{"stream":false,"model":"x"}`, model: "x", has: true},
		{name: "stream string", body: `{"stream":"true","model":"x"}`, model: "x", has: true},
		{name: "nested model ignored", body: `{"messages":[{"model":"inner"}],"extra":{"model":"deep"}}`},
		{name: "nested then top", body: `{"a":{"model":"no"},"model":"yes"}`, model: "yes", has: true},
		{name: "escapes", body: `{"model":"a\"b\\c\/d\u00e9\n"}`, model: "a\"b\\c/dé\n", has: true},
		{name: "surrogate pair", body: `{"model":"\ud83d\ude00"}`, model: "😀", has: true},
		{name: "lone surrogate", body: `{"model":"\ud83dx"}`, model: "\ufffdx", has: true},
		{name: "escaped key", body: `{"mod\u0065l":"k"}`, model: "k", has: true},
		{name: "last wins", body: `{"model":"a","model":"b"}`, model: "b", has: true},
		{name: "key in string value", body: `{"prompt":"\"model\":\"x\"","model":"y"}`, model: "y", has: true},
		{name: "case sensitive", body: `{"Model":"x"}`},
		{name: "empty object", body: `{}`},
		{name: "numbers and literals", body: `{"t":-1.5e+3,"n":null,"b":[true,false,0,{}],"model":"m"}`, model: "m", has: true},
		{name: "not object", body: `["model"]`, err: ErrMalformedJSON},
		{name: "truncated", body: `{"model":"a",`, err: ErrMalformedJSON},
		{name: "trailing garbage", body: `{"model":"a"}x`, err: ErrMalformedJSON},
		{name: "two objects", body: `{"model":"a"}{}`, err: ErrMalformedJSON},
		{name: "bad escape", body: `{"model":"\q"}`, err: ErrMalformedJSON},
		{name: "control char", body: "{\"model\":\"a\x01\"}", err: ErrMalformedJSON},
		{name: "leading zero", body: `{"a":01}`, err: ErrMalformedJSON},
		{name: "bad number", body: `{"a":1.}`, err: ErrMalformedJSON},
		{name: "unterminated", body: `{"model":"a`, err: ErrMalformedJSON},
		{name: "model number", body: `{"model":5}`, err: ErrModelNotString},
		{name: "model null then string", body: `{"model":null,"model":"s"}`, model: "s", has: true},
		{name: "non utf8", body: "{\"model\":\"\xff\"}", err: ErrModelNotUTF8},
		{name: "empty", body: ``, err: ErrMalformedJSON},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, _, err := ScanJSON([]byte(tc.body), nil)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("err %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if f.HasModel != tc.has || string(f.Model) != tc.model || f.Stream != tc.stream {
				t.Fatalf("got model %q has %v stream %v; want %q %v %v", f.Model, f.HasModel, f.Stream, tc.model, tc.has, tc.stream)
			}
		})
	}
}

func TestKServeModel(t *testing.T) {
	for _, tc := range []struct {
		path, model string
		ok          bool
	}{
		{"/v2/models/resnet/infer", "resnet", true},
		{"/v2/models/resnet", "resnet", true},
		{"/v2/models/resnet/versions/2/infer", "resnet", true},
		{"/v2/models/", "", false},
		{"/v2/models//infer", "", false},
		{"/v2/health/ready", "", false},
		{"/v1/chat/completions", "", false},
	} {
		m, ok := KServeModel([]byte(tc.path))
		if ok != tc.ok || string(m) != tc.model {
			t.Errorf("%s: %q %v", tc.path, m, ok)
		}
	}
}

func grpcFrame(msg []byte) []byte {
	b := []byte{0, 0, 0, 0, 0}
	b[1], b[2], b[3], b[4] = byte(len(msg)>>24), byte(len(msg)>>16), byte(len(msg)>>8), byte(len(msg))
	return append(b, msg...)
}

func TestGRPCModel(t *testing.T) {
	full := grpcFrame(kserve.InferRequest{ModelName: "resnet", ModelVersion: "3", ID: "x"}.Marshal())
	m, found, need, err := GRPCModel(full)
	if err != nil || !found || need != 0 || string(m) != "resnet" {
		t.Fatalf("full: %q %v %d %v", m, found, need, err)
	}
	if _, _, need, _ := GRPCModel(full[:3]); need != 5 {
		t.Fatalf("short header: need %d", need)
	}
	if _, _, need, _ := GRPCModel(full[:8]); need != len(full) {
		t.Fatalf("short body: need %d, want %d", need, len(full))
	}
	// model_name after other fields, and a later occurrence wins.
	var msg []byte
	msg = protowire.AppendTag(msg, 2, protowire.BytesType)
	msg = protowire.AppendString(msg, "v1")
	msg = protowire.AppendTag(msg, 1, protowire.BytesType)
	msg = protowire.AppendString(msg, "first")
	msg = protowire.AppendTag(msg, 5, protowire.VarintType)
	msg = protowire.AppendVarint(msg, 99)
	msg = protowire.AppendTag(msg, 1, protowire.BytesType)
	msg = protowire.AppendString(msg, "second")
	if m, found, _, err := GRPCModel(grpcFrame(msg)); err != nil || !found || string(m) != "second" {
		t.Fatalf("later field: %q %v %v", m, found, err)
	}
	if _, found, _, err := GRPCModel(grpcFrame(nil)); err != nil || found {
		t.Fatalf("empty message: %v %v", found, err)
	}
	bad := grpcFrame([]byte{0x0a, 0x10, 'a'}) // length past the end
	if _, _, _, err := GRPCModel(bad); !errors.Is(err, ErrMalformedGRPC) {
		t.Fatalf("truncated field: %v", err)
	}
	nonUTF8 := grpcFrame(protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "\xff"))
	if _, _, _, err := GRPCModel(nonUTF8); !errors.Is(err, ErrModelNotUTF8) {
		t.Fatalf("non-UTF-8: %v", err)
	}
	comp := append([]byte(nil), full...)
	comp[0] = 1
	if _, found, need, err := GRPCModel(comp); err != nil || found || need != 0 {
		t.Fatalf("compressed: %v %v %v", found, need, err)
	}
}

// referenceModel decodes body with encoding/json: ok reports a valid JSON
// object; has and model its top-level "model" string.
func referenceModel(body []byte) (ok, has bool, model string, notString bool) {
	if !json.Valid(body) {
		return false, false, "", false
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		return false, false, "", false
	}
	raw, present := m["model"]
	if !present {
		return true, false, "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return true, false, "", true
	}
	return true, true, s, false
}

func FuzzScanJSON(f *testing.F) {
	for _, s := range []string{
		`{"model":"llama","stream":true}`, `{"messages":[{"model":"x"}],"model":"y"}`,
		`{"model":"\ud83d\ude00"}`, `{"mod\u0065l":"k"}`, `{"model":5}`, `{"a":[1,2,{"b":null}]}`,
		`{"model":"a\"b"}`, ` {} `, `[]`, `{"model":"\ud800\u0041"}`, `{"model":null}`, `{"x":1e5,"y":-0.0}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > 1<<16 {
			return
		}
		fields, _, err := ScanJSON(body, nil)
		ok, has, model, notString := referenceModel(body)
		// A duplicate "model" key whose last value is null: encoding/json
		// keeps the RawMessage "null"; we agree that no string model exists.
		switch {
		case !ok:
			if err == nil {
				t.Fatalf("accepted invalid JSON %q", body)
			}
		case notString:
			if err == nil && fields.HasModel {
				t.Fatalf("%q: model %q but encoding/json says not a string", body, fields.Model)
			}
		case has:
			if !utf8.ValidString(model) || bytes.ContainsRune([]byte(model), utf8.RuneError) {
				// encoding/json replaced invalid UTF-8; we reject it or
				// produce the same U+FFFD for lone surrogates.
				if err == nil && string(fields.Model) != model {
					t.Fatalf("%q: model %q, reference %q", body, fields.Model, model)
				}
				return
			}
			if err != nil || !fields.HasModel || string(fields.Model) != model {
				t.Fatalf("%q: got %q %v %v, reference %q", body, fields.Model, fields.HasModel, err, model)
			}
		default:
			if err != nil || fields.HasModel {
				t.Fatalf("%q: got model %q err %v, reference has none", body, fields.Model, err)
			}
		}
	})
}

func FuzzGRPCModel(f *testing.F) {
	f.Add(grpcFrame(kserve.InferRequest{ModelName: "m", ModelVersion: "1"}.Marshal()))
	f.Add(grpcFrame(kserve.MarshalModelReadyRequest("resnet", "2")))
	f.Add([]byte{0, 0, 0, 0, 3, 0x0a, 0x01, 'x'})
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, found, need, err := GRPCModel(b)
		if err != nil {
			return
		}
		if need > 0 && need <= len(b) {
			t.Fatalf("need %d with %d bytes", need, len(b))
		}
		if found && need == 0 && b[0] == 0 {
			ref, rerr := kserve.PeekModelName(b[5:])
			_ = rerr
			if !utf8.Valid(m) {
				t.Fatalf("non-UTF-8 model returned")
			}
			// PeekModelName returns the first occurrence; ours the last
			// (protobuf semantics). They agree when the field appears once.
			if bytes.Count(b[5:], m) == 1 && rerr == nil && ref != string(m) && !bytes.Contains(b[5:], []byte(ref)) {
				t.Fatalf("model %q, kserve.PeekModelName %q", m, ref)
			}
		}
	})
}

func TestScanJSONNoAllocs(t *testing.T) {
	body := []byte(`{"model":"meta-llama/Llama-3-8B","messages":[{"role":"user","content":"hello \"there\""}],"stream":true,"max_tokens":64}`)
	esc := []byte(`{"model":"ll\u0061ma"}`)
	scratch := make([]byte, 0, 64)
	n := testing.AllocsPerRun(200, func() {
		f, s, err := ScanJSON(body, scratch)
		if err != nil || !f.Stream {
			t.Fatal("bad scan")
		}
		_, scratch, _ = ScanJSON(esc, s)
	})
	if n != 0 {
		t.Fatalf("ScanJSON allocates %v per run", n)
	}
}

// TestIsJSONRequest: JSON bodies are routed by their model field whatever
// the client says the type is, as long as it is not another type: curl -d
// sends application/x-www-form-urlencoded.
func TestIsJSONRequest(t *testing.T) {
	cases := []struct {
		ct, body string
		want     bool
	}{
		{"application/json", `{"model":"m"}`, true},
		{"application/json; charset=utf-8", ``, true},
		{"", `  {"model":"m"}`, true},
		{"application/x-www-form-urlencoded", `{"model":"m"}`, true},
		{"application/x-www-form-urlencoded", `model=m`, false},
		{"text/plain", `{"model":"m"}`, false},
		{"", `model=m`, false},
	}
	for _, c := range cases {
		if got := IsJSONRequest([]byte(c.ct), []byte(c.body)); got != c.want {
			t.Errorf("IsJSONRequest(%q, %q) = %v, want %v", c.ct, c.body, got, c.want)
		}
	}
}

// TestPlain8 checks the eight-byte skip against the byte table on every
// single-byte value in every position, and on random words.
func TestPlain8(t *testing.T) {
	ref := func(w uint64) bool {
		for i := 0; i < 8; i++ {
			if !strPlain[byte(w>>(8*i))] {
				return false
			}
		}
		return true
	}
	const fill = 0x6161616161616161 // "aaaaaaaa"
	for pos := 0; pos < 8; pos++ {
		for c := 0; c < 256; c++ {
			w := fill&^(0xff<<(8*pos)) | uint64(c)<<(8*pos)
			if plain8(w) != ref(w) {
				t.Fatalf("byte %#x at %d: plain8 %v, table %v", c, pos, plain8(w), ref(w))
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 1_000_000; i++ {
		w := rng.Uint64()
		if plain8(w) != ref(w) {
			t.Fatalf("%#x: plain8 %v, table %v", w, plain8(w), ref(w))
		}
	}
}
