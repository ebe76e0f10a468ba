package hpacklit

import (
	"strings"
	"testing"

	"golang.org/x/net/http2/hpack"
)

func decode(t testing.TB, block []byte) []hpack.HeaderField {
	t.Helper()
	fields, err := hpack.NewDecoder(4096, nil).DecodeFull(block)
	if err != nil {
		t.Fatalf("x/net's decoder rejects the block: %v", err)
	}
	return fields
}

// Every field decodes back as it was, with x/net's decoder: static and
// new names, empty and long values (multi-byte lengths).
func TestDecodesWithXNet(t *testing.T) {
	in := []hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: "https"},
		{Name: ":authority", Value: "node-1:8001"},
		{Name: ":path", Value: "/inference.GRPCInferenceService/ModelInfer"},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"},
		{Name: "grpc-timeout", Value: "30S"},
		{Name: "x-empty", Value: ""},
		{Name: "x-long", Value: strings.Repeat("v", 300)},
		{Name: strings.Repeat("n", 200), Value: strings.Repeat("é", 5000)},
		{Name: "www-authenticate", Value: "Bearer"},
	}
	block := AppendNoTable(nil)
	for _, f := range in {
		block = Append(block, f.Name, f.Value)
	}
	out := decode(t, block)
	if len(out) != len(in) {
		t.Fatalf("decoded %d fields, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i].Name != in[i].Name || out[i].Value != in[i].Value {
			t.Errorf("field %d: got %q: %.20q, want %q: %.20q", i, out[i].Name, out[i].Value, in[i].Name, in[i].Value)
		}
	}
}

// The static table's names are used by index: a known name costs one
// byte, not its spelling.
func TestStaticNamesByIndex(t *testing.T) {
	if got := Append(nil, "content-type", "x"); len(got) != 4 {
		t.Fatalf("content-type: x encodes as % x, want 4 (index 31 takes 2 bytes with a 4-bit prefix, the value 2)", got)
	}
	if got := Append(nil, ":path", "/"); len(got) != 3 || got[0] != 0x04 {
		t.Fatalf(":path: / encodes as % x", got)
	}
}

func FuzzAppend(f *testing.F) {
	f.Add("content-type", "application/grpc")
	f.Add("x-custom", "")
	f.Fuzz(func(t *testing.T, name, value string) {
		out := decode(t, Append(nil, name, value))
		if len(out) != 1 || out[0].Name != name || out[0].Value != value {
			t.Fatalf("got %+v", out)
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	b.ReportAllocs()
	buf := make([]byte, 0, 512)
	for b.Loop() {
		buf = Append(buf[:0], ":path", "/inference.GRPCInferenceService/ModelInfer")
		buf = Append(buf, "content-type", "application/grpc")
		buf = Append(buf, "x-request-id", "0123456789abcdef0123456789abcdef")
	}
}

// staticIndex agrees with x/net's static table: every name it indexes
// decodes back as that name, and every name of the table is indexed at
// its first entry.
func TestStaticIndexMatchesTheTable(t *testing.T) {
	first := map[string]uint64{}
	for i := uint64(1); i <= 61; i++ {
		f := decode(t, appendString(appendInt(nil, 0x00, 4, i), ""))
		if _, seen := first[f[0].Name]; !seen {
			first[f[0].Name] = i
		}
	}
	for name, i := range first {
		if got := staticIndex(name); got != i {
			t.Errorf("staticIndex(%q) = %d, want %d", name, got, i)
		}
	}
	if staticIndex("x-request-id") != 0 {
		t.Error("a name outside the table has an index")
	}
}
