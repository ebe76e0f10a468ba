package prefix

import (
	"strings"
	"testing"
)

// fuzzSeeds are bodies of every shape Scan reads, plus odd ones.
func fuzzSeeds(t testing.TB) [][]byte {
	long := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 8)
	seeds := []string{
		`{"model":"m","messages":[{"role":"system","content":"` + long + `"},{"role":"user","content":"hi"}],"user":"alice"}`,
		`{"messages":[{"role":"user","content":[{"type":"text","text":"` + long + `"},{"type":"text","text":"b"},{"type":"image_url","image_url":{"url":"u"}}]}]}`,
		`{"messages":[null,{"role":null,"content":null},{"content":"x"},"str",[1],{"role":"a","role":"b","content":"c","content":"d"}]}`,
		`{"messages":[{"role":"u\u0073er","cont\u0065nt":"caf\u00e9 \ud83d\ude00 \ud800 \udc00x \u0000"}]}`,
		"{\"messages\":[{\"role\":\"user\",\"content\":\"bad utf8 \xff\xfe \xe2\x82\"}]}",
		`{"prompt":"` + long + long + long + `"}`,
		`{"prompt":["` + long + `",2]}`,
		`{"prompt":[1,"x"]}`,
		`{"prompt":null}`,
		`{"inputs":[{"name":"text_input","datatype":"BYTES","shape":[2],"data":["` + long + `",["nested",7]]},{"datatype":"BYTES"},null,{"datatype":"INT32","data":[1]}]}`,
		`{"messages":"not an array","prompt":"p"}`,
		`{"messages":[],"messages":[{"role":"user","content":"last wins"}]}`,
		`{}`, ` { } `, `{"a":[{"b":{"c":[true,false,null,-1.5e+3,0,"s"]}}]}`,
		`{"user":"\u0000"}`, `{"user":""}`,
		`{"messages":[{"role":"user","content":"a\\\\\"b\\\\","x":"\\\\\\\""},{"content":"\\"}]}`,
		`{"messages":[{"role":"user","content":"` + strings.Repeat("你好，世界。\\n", 20) + `\u4f60"}]}`,
	}
	out := make([][]byte, len(seeds))
	for i, s := range seeds {
		out[i] = []byte(s)
	}
	return out
}

// FuzzScan checks Scan against the encoding/json reference: the same
// error, kind, size, user hash and every point; and ScanChecked against
// Scan on well-formed bodies (on the others it must only not panic).
func FuzzScan(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s, uint64(1))
	}
	f.Fuzz(func(t *testing.T, body []byte, seed uint64) {
		if len(body) > 1<<16 {
			return
		}
		if msg := compareReference(body, seed); msg != "" {
			t.Fatal(msg)
		}
		if msg := compareChecked(body, seed); msg != "" {
			t.Fatal(msg)
		}
	})
}
