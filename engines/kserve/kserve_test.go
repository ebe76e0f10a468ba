package kserve

import (
	"errors"
	"testing"

	"github.com/switchyard-dev/switchyard/engines"
)

func TestRoundTrip(t *testing.T) {
	n, yes, s, d := int64(-5), true, "v", 2.5
	req := InferRequest{ModelName: "m", ModelVersion: "2", ID: "x",
		Parameters: map[string]Param{"a": {Int64: &n}, "b": {Bool: &yes}, "c": {String: &s}, "d": {Double: &d}},
		Inputs: []Tensor{{Name: "in", Datatype: "INT64", Shape: []int64{1, 2}, Int64Contents: []int64{7, -8}},
			{Name: "t", Datatype: "BYTES", Shape: []int64{1}, BytesContents: [][]byte{[]byte("hi")}},
			{Name: "f", Datatype: "FP32", Shape: []int64{1}, FP32Contents: []float32{1.5}}},
		Outputs: []string{"out"}, RawInputContents: [][]byte{{1, 2}}}
	got, err := ParseInferRequest(req.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if got.ModelName != "m" || got.ModelVersion != "2" || got.ID != "x" || *got.Parameters["a"].Int64 != -5 || !*got.Parameters["b"].Bool ||
		*got.Parameters["c"].String != "v" || *got.Parameters["d"].Double != 2.5 || got.Inputs[0].Shape[1] != 2 || got.Inputs[0].Int64Contents[1] != -8 ||
		string(got.Inputs[1].BytesContents[0]) != "hi" || got.Inputs[2].FP32Contents[0] != 1.5 || got.Outputs[0] != "out" || got.RawInputContents[0][1] != 2 {
		t.Errorf("round trip = %+v", got)
	}
	if name, err := PeekModelName(req.Marshal()); err != nil || name != "m" {
		t.Errorf("peek = %q %v", name, err)
	}
	if v, ok := got.Parameters["d"].Int(); ok {
		t.Errorf("2.5 as int = %d", v)
	}
}

func TestMalformed(t *testing.T) {
	for _, b := range [][]byte{{0xff}, {0x0a, 0x05, 'a'}, {0x08}, {0x2a, 0x02, 0x0a, 0x09}} {
		if _, err := ParseInferRequest(b); !errors.Is(err, engines.ErrMalformed) {
			t.Errorf("%x: err = %v", b, err)
		}
	}
	if _, err := PeekModelName([]byte{0x10, 0x01}); !errors.Is(err, engines.ErrMalformed) {
		t.Errorf("no model_name: %v", err)
	}
}

func FuzzParseInferRequest(f *testing.F) {
	three := int64(3)
	f.Add(InferRequest{ModelName: "m", Parameters: map[string]Param{"max_tokens": {Int64: &three}},
		Inputs: []Tensor{{Name: "t", Datatype: "BYTES", Shape: []int64{1}, BytesContents: [][]byte{[]byte("hi")}}}}.Marshal())
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseInferRequest(b)
		if err != nil {
			if !errors.Is(err, engines.ErrMalformed) {
				t.Fatalf("untyped %v", err)
			}
			return
		}
		// Re-encoding and parsing again must give the same model name.
		r2, err := ParseInferRequest(r.Marshal())
		if err != nil || r2.ModelName != r.ModelName || len(r2.Inputs) != len(r.Inputs) {
			t.Fatalf("re-parse: %v %+v vs %+v", err, r2, r)
		}
		_, _ = PeekModelName(b)
	})
}
