package sim

import (
	"bytes"
	"strconv"
	"testing"
	"time"

	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/vllm"
)

// TestSleepMode: vLLM's sleep endpoints put the simulated engine to sleep
// and wake it; vllm:engine_sleep_state reports the level per engine as
// vLLM does, the vllm adapter reads it as asleep, inference is refused
// while health stays 200; other dialects have no sleep endpoints.
func TestSleepMode(t *testing.T) {
	ctx := testCtx(t, 10*time.Second)
	n := start(t, Config{Model: "m", DataParallel: 2, Override: fast})
	sleepState := func() (map[string]float64, engines.SleepState) {
		t.Helper()
		m := scrape(t, n, "/metrics")
		got := map[string]float64{}
		for _, s := range m.Samples("vllm:engine_sleep_state") {
			got[s.Labels["engine"]+"/"+s.Labels["sleep_state"]] = s.Value
			if s.Labels["model_name"] != "m" {
				t.Errorf("sleep state series without model_name m: %v", s.Labels)
			}
		}
		_, b := get(t, ctx, n.URL()+"/metrics")
		l, err := vllm.ParseLoad(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		return got, l.Sleep
	}
	want := func(level int) map[string]float64 {
		m := map[string]float64{}
		for _, e := range []string{"0", "1"} {
			m[e+"/awake"], m[e+"/weights_offloaded"], m[e+"/discard_all"] = 0, 0, 0
			switch level {
			case 0:
				m[e+"/awake"] = 1
			case 1:
				m[e+"/weights_offloaded"] = 1
			case 2:
				m[e+"/discard_all"] = 1
			}
		}
		return m
	}
	check := func(level int, wantSleep engines.SleepState, isSleeping string) {
		t.Helper()
		got, s := sleepState()
		if w := want(level); len(got) != len(w) {
			t.Errorf("level %d: series %v, want %v", level, got, w)
		} else {
			for k, v := range w {
				if got[k] != v {
					t.Errorf("level %d: %s = %g, want %g", level, k, got[k], v)
				}
			}
		}
		if s != wantSleep {
			t.Errorf("level %d: adapter reads %q, want %q", level, s, wantSleep)
		}
		if st, b := get(t, ctx, n.URL()+"/is_sleeping"); st != 200 || string(b) != `{"is_sleeping":`+isSleeping+`}` {
			t.Errorf("level %d: GET /is_sleeping: %d %s", level, st, b)
		}
	}
	complete := func() int {
		resp, _ := post(t, ctx, n.URL()+"/v1/completions", `{"model":"m","prompt":"x","max_tokens":1}`)
		return resp.StatusCode
	}

	check(0, engines.SleepAwake, "false")
	for _, level := range []int{1, 2} {
		if resp, b := post(t, ctx, n.URL()+"/sleep?level="+strconv.Itoa(level), ""); resp.StatusCode != 200 {
			t.Fatalf("POST /sleep?level=%d: %d %s", level, resp.StatusCode, b)
		}
		check(level, engines.SleepAsleep, "true")
		if st := complete(); st != 503 {
			t.Errorf("completion while asleep: %d, want 503", st)
		}
		if st, _ := get(t, ctx, n.URL()+"/health"); st != 200 {
			t.Errorf("health while asleep: %d, want 200 (as vLLM)", st)
		}
		if resp, b := post(t, ctx, n.URL()+"/wake_up", ""); resp.StatusCode != 200 {
			t.Fatalf("POST /wake_up: %d %s", resp.StatusCode, b)
		}
		check(0, engines.SleepAwake, "false")
		if st := complete(); st != 200 {
			t.Errorf("completion after wake_up: %d, want 200", st)
		}
	}
	if resp, _ := post(t, ctx, n.URL()+"/sleep", ""); resp.StatusCode != 200 || n.SleepLevel() != 1 {
		t.Errorf("POST /sleep without a level: %d, level %d, want level 1", resp.StatusCode, n.SleepLevel())
	}
	if resp, b := post(t, ctx, n.URL()+"/sleep?level=3", ""); resp.StatusCode != 400 || !bytes.Contains(b, []byte("level")) {
		t.Errorf("POST /sleep?level=3: %d %s, want 400 naming the level", resp.StatusCode, b)
	}
	if err := n.Sleep(5); err == nil {
		t.Error("Sleep(5) accepted")
	}
	n.WakeUp()
	if n.Stats().SleepLevel != 0 {
		t.Errorf("after WakeUp: %+v", n.Stats())
	}

	sg := start(t, Config{Model: "m", Engine: "sglang", Override: fast})
	if resp, _ := post(t, ctx, sg.URL()+"/sleep", ""); resp.StatusCode != 404 {
		t.Errorf("sglang POST /sleep: %d, want 404 (vLLM's endpoint)", resp.StatusCode)
	}
}
