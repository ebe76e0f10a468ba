package engines_test

import (
	"bytes"
	"testing"

	"github.com/switchyard-dev/switchyard/engines"
)

// BenchmarkParseLoad parses each engine fixture with its dialect: the
// whole path of one scrape (text parse, label filtering, rank dedupe,
// combination). The realistic case is the busy vLLM V1 fixture.
func BenchmarkParseLoad(b *testing.B) {
	for _, c := range fixtureCases {
		data := fixture(b, c.file)
		a := lookup(b, c.engine)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := a.ParseLoad(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseFallback(b *testing.B) {
	data := fixture(b, "sglang/v1-loads-dp2-derived.json")
	d, err := engines.LookupDialect("sglang")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := d.ParseFallback(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
