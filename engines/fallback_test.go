package engines_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/engines"
)

func sglangDialect(t testing.TB) *engines.Dialect {
	d, err := engines.LookupDialect("sglang")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestParseFallbackSGLangLoads(t *testing.T) {
	l, err := sglangDialect(t).ParseFallback(bytes.NewReader(fixture(t, "sglang/v1-loads-dp2-derived.json")))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{l.Running.String(), l.Waiting.String(), l.KVCache.String(), l.PrefixCacheHitRate.String(), l.Source}
	want := []string{"21", "3", "0.3", "0.585", "/v1/loads"}
	if strings.Join(got, " ") != strings.Join(want, " ") || l.Anomalies != 0 {
		t.Errorf("got %q anomalies %d, want %q", got, l.Anomalies, want)
	}
}

func TestParseFallbackErrors(t *testing.T) {
	d := sglangDialect(t)
	full := string(fixture(t, "sglang/v1-loads-dp2-derived.json"))
	cases := []struct {
		name, text string
		want       error
		mention    string
	}{
		{"empty", "", engines.ErrMalformed, "empty"},
		{"cut", full[:len(full)/2], engines.ErrMalformed, "truncated"},
		{"not json", "<html>404</html>", engines.ErrMalformed, "line 1"},
		{"no loads", `{"timestamp": "x"}`, engines.ErrMalformed, `no "loads" array`},
		{"loads not a list", `{"loads": 3}`, engines.ErrMalformed, "want an array"},
		{"wrong type", `{"loads": [{"num_running_reqs": "many"}]}`, engines.ErrMalformed, "loads[0].num_running_reqs: want a number"},
		{"no ranks", `{"loads": []}`, engines.ErrNoLoadMetrics, "num_running_reqs"},
		{"all counts bad", `{"loads": [{"num_running_reqs": -1, "num_waiting_reqs": -2}]}`, engines.ErrMalformed, "out of range"},
		{"trailing data", `{"loads": []} {}`, engines.ErrMalformed, "after the JSON"},
		{"trailing brace", `{"loads": [{"num_running_reqs": 1}]}}`, engines.ErrMalformed, "after the JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := d.ParseFallback(strings.NewReader(c.text))
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.mention) {
				t.Errorf("err = %v, want %v mentioning %q", err, c.want, c.mention)
			}
		})
	}
	l, err := d.ParseFallback(strings.NewReader(`{"loads": [{"num_running_reqs": 2, "token_usage": 1.5}, {"num_running_reqs": 1, "token_usage": 0.5}]}`))
	if err != nil || l.Running.String() != "3" || l.KVCache.String() != "0.5" || l.Anomalies != 1 {
		t.Errorf("anomaly in one rank: %+v %v", l, err)
	}
	if _, err := lookupDialect(t, "tgi").ParseFallback(strings.NewReader("{}")); !errors.Is(err, engines.ErrNoLoadMetrics) {
		t.Errorf("tgi has no fallback: %v", err)
	}
}

func lookupDialect(t testing.TB, name string) *engines.Dialect {
	d, err := engines.LookupDialect(name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
