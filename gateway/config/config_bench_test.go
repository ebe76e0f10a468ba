package config

import "testing"

func BenchmarkParseConfig(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		c, err := ParseConfig([]byte(fullYAML))
		if err != nil {
			b.Fatal(err)
		}
		c.ApplyDefaults()
		if err := c.Validate(); err != nil {
			b.Fatal(err)
		}
	}
}
