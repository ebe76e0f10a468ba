package prefix

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/switchyard-dev/switchyard/balancer"
)

// chatBody returns an OpenAI chat body with the given system prompt and
// alternating user/assistant turns.
func chatBody(t testing.TB, system string, turns ...string) []byte {
	t.Helper()
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	msgs := []msg{{"system", system}}
	for i, c := range turns {
		role := "user"
		if i%2 == 1 {
			role = "assistant"
		}
		msgs = append(msgs, msg{role, c})
	}
	b, err := json.Marshal(map[string]any{"model": "m", "messages": msgs, "stream": true})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type points struct {
	hashes []uint64
	ends   []uint32
	res    Result
}

func scan(t testing.TB, body []byte, capacity int) points {
	t.Helper()
	p := points{hashes: make([]uint64, capacity), ends: make([]uint32, capacity)}
	var err error
	p.res, err = Scan(body, Seed([]byte("m")), p.hashes, p.ends)
	if err != nil {
		t.Fatalf("Scan: %v", err)
	}
	p.hashes, p.ends = p.hashes[:p.res.Points], p.ends[:p.res.Points]
	return p
}

func (p points) has(h uint64, end uint32) bool {
	for i := range p.hashes {
		if p.hashes[i] == h && p.ends[i] == end {
			return true
		}
	}
	return false
}

// The next turn of a conversation holds, as a point, the exact end of the
// previous turn's prompt: the previous turn's deepest point.
func TestNextTurnHasPreviousEnd(t *testing.T) {
	system := strings.Repeat("You are a careful assistant. ", 40) // 1,160 bytes
	turn1 := scan(t, chatBody(t, system, "What is a KV cache?"), 256)
	turn2 := scan(t, chatBody(t, system, "What is a KV cache?", "The keys and values of past tokens.", "And prefix caching?"), 256)
	if turn1.res.Kind != Chat || turn2.res.Kind != Chat {
		t.Fatalf("kinds %v %v, want chat", turn1.res.Kind, turn2.res.Kind)
	}
	last := turn1.res.Points - 1
	if !turn2.has(turn1.hashes[last], turn1.ends[last]) {
		t.Fatalf("turn 2 lacks turn 1's last point (end %d)", turn1.ends[last])
	}
	if turn1.ends[last] != uint32(turn1.res.Chars) {
		t.Fatalf("turn 1's last point ends at %d, its stream at %d", turn1.ends[last], turn1.res.Chars)
	}
	// Every point of turn 1 is a point of turn 2: same prefix, same names.
	for i := range turn1.hashes {
		if !turn2.has(turn1.hashes[i], turn1.ends[i]) {
			t.Fatalf("turn 1 point %d (end %d) missing from turn 2", i, turn1.ends[i])
		}
	}
	// Turn 2 goes deeper.
	if turn2.ends[turn2.res.Points-1] <= turn1.ends[last] {
		t.Fatal("turn 2 does not go deeper than turn 1")
	}
}

// Two conversations with the same system prompt share the points inside
// it and no point after their first user message.
func TestSharedSystemPrompt(t *testing.T) {
	system := strings.Repeat("Answer in French. ", 100) // 1,800 bytes
	a := scan(t, chatBody(t, system, "Bonjour"), 256)
	b := scan(t, chatBody(t, system, "Salut"), 256)
	sysEnd := uint32(len("system") + 1 + len(system) + 1)
	shared := 0
	for i := range a.hashes {
		switch inB := b.has(a.hashes[i], a.ends[i]); {
		case a.ends[i] <= sysEnd && !inB:
			t.Fatalf("point at %d inside the system prompt not shared", a.ends[i])
		case a.ends[i] > sysEnd && inB:
			t.Fatalf("point at %d after the system prompt shared", a.ends[i])
		case inB:
			shared++
		}
	}
	if shared < 10 {
		t.Fatalf("%d shared points, want the system prompt's blocks and its message end", shared)
	}
}

// Escaped and raw forms of the same text give the same points, and a
// different model gives different ones.
func TestEscapesAndSeed(t *testing.T) {
	raw := []byte(`{"model":"m","messages":[{"role":"user","content":"caf\u00e9 ☕ \"quoted\" / x"}]}`)
	esc := []byte(`{"messages":[{"content":"caf\u00e9 \u2615 \"quoted\" \/ x","role":"us\u0065r"}],"model":"m"}`)
	a, b := scan(t, raw, 64), scan(t, esc, 64)
	if a.res.Points == 0 || a.res.Points != b.res.Points || a.res.Chars != b.res.Chars {
		t.Fatalf("points %d/%d chars %d/%d", a.res.Points, b.res.Points, a.res.Chars, b.res.Chars)
	}
	for i := range a.hashes {
		if a.hashes[i] != b.hashes[i] {
			t.Fatalf("point %d differs between raw and escaped text", i)
		}
	}
	other := make([]uint64, 64)
	ends := make([]uint32, 64)
	res, err := Scan(raw, Seed([]byte("m-lora")), other, ends)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < res.Points; i++ {
		if other[i] == a.hashes[i] {
			t.Fatalf("point %d equal under another model's seed", i)
		}
	}
}

func TestKinds(t *testing.T) {
	long := strings.Repeat("abcdefgh", 40)
	cases := []struct {
		name   string
		body   string
		kind   Kind
		points bool
		user   bool
	}{
		{"chat", `{"messages":[{"role":"user","content":"` + long + `"}],"user":"u-1"}`, Chat, true, true},
		{"chat parts", `{"messages":[{"role":"user","content":[{"type":"text","text":"` + long + `"},{"type":"image_url","image_url":{"url":"x"}}]}]}`, Chat, true, false},
		{"completion", `{"model":"m","prompt":"` + long + `"}`, Completion, true, false},
		{"completion array", `{"prompt":["` + long + `","other"]}`, Completion, true, false},
		{"completion tokens", `{"prompt":[1,2,3]}`, Completion, false, false},
		{"kserve", `{"inputs":[{"name":"text_input","datatype":"BYTES","shape":[1],"data":["` + long + `"]}]}`, KServe, true, false},
		{"kserve nested", `{"inputs":[{"name":"t","datatype":"BYTES","shape":[1,1],"data":[["` + long + `"]]}]}`, KServe, true, false},
		{"kserve numbers", `{"inputs":[{"name":"x","datatype":"FP32","shape":[2],"data":[1.5,2]}]}`, KServe, false, false},
		{"messages win", `{"prompt":"` + long + `","messages":[]}`, Chat, false, false},
		{"none", `{"model":"m","input":"embed me"}`, None, false, false},
		{"user not a string", `{"messages":[],"user":42}`, Chat, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := scan(t, []byte(c.body), 64)
			if p.res.Kind != c.kind || (p.res.Points > 0) != c.points || (p.res.User != 0) != c.user {
				t.Fatalf("kind %v points %d user %x; want kind %v points %v user %v", p.res.Kind, p.res.Points, p.res.User, c.kind, c.points, c.user)
			}
			if msg := compareReference([]byte(c.body), 7); msg != "" {
				t.Fatal(msg)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	for _, body := range []string{
		``, `null`, `[]`, `"x"`, `{`, `{"messages":[}`, `{"a":1}x`, `{"a":01}`, `{"a":"\x01"}`,
		`{"a":"\u12"}`, `{"a":"\q"}`, `{"a":tru}`, `{"a" 1}`, `{"a":1,}`, `{"a":[1,]}`, `{,"a":1}`,
		`{"a":1}{"b":2}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`, strings.Repeat("[", 20) + `{}`,
		`{"a":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
	} {
		var h [8]uint64
		var e [8]uint32
		if _, err := Scan([]byte(body), 0, h[:], e[:]); !errors.Is(err, ErrMalformed) {
			t.Errorf("%.40q: err %v, want ErrMalformed", body, err)
		}
		if msg := compareReference([]byte(body), 0); msg != "" {
			t.Errorf("%.40q: %s", body, msg)
		}
	}
	// 10,000 levels are still fine, as for encoding/json.
	deep := `{"a":` + strings.Repeat("[", 9999) + strings.Repeat("]", 9999) + `}`
	if msg := compareReference([]byte(deep), 0); msg != "" {
		t.Fatal(msg)
	}
}

// With more points than room, the first keepFirst stay, the deepest point
// is the stream's end, and the points stay in order.
func TestThinning(t *testing.T) {
	turns := make([]string, 60)
	for i := range turns {
		turns[i] = strings.Repeat(string(rune('a'+i%26)), 100+i)
	}
	body := chatBody(t, strings.Repeat("sys ", 500), turns...)
	full := scan(t, body, 4096)
	for _, capacity := range []int{1, 2, 3, 4, 5, 16, 32, 100} {
		p := scan(t, body, capacity)
		if p.res.Points == 0 || p.res.Points > capacity {
			t.Fatalf("capacity %d: %d points", capacity, p.res.Points)
		}
		if got := p.ends[p.res.Points-1]; got != uint32(full.res.Chars) {
			t.Fatalf("capacity %d: deepest point ends at %d, want %d", capacity, got, full.res.Chars)
		}
		for i := range p.hashes {
			if !full.has(p.hashes[i], p.ends[i]) {
				t.Fatalf("capacity %d: point %d is not a point of the full scan", capacity, i)
			}
			if i > 0 && p.ends[i] < p.ends[i-1] {
				t.Fatalf("capacity %d: points out of order", capacity)
			}
			if capacity >= 16 && i < keepFirst && p.hashes[i] != full.hashes[i] {
				t.Fatalf("capacity %d: shallow point %d dropped", capacity, i)
			}
		}
	}
}

func TestIsBlockPoint(t *testing.T) {
	var got []int
	for n := 0; n <= 130; n++ {
		if IsBlockPoint(n) {
			got = append(got, n)
		}
	}
	want := []int{1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 40, 48, 56, 64, 80, 96, 112, 128}
	if len(got) != len(want) {
		t.Fatalf("block points %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("block points %v, want %v", got, want)
		}
	}
}

// Every seed of the fuzz corpus agrees with the reference.
func TestReferenceSeeds(t *testing.T) {
	for _, s := range fuzzSeeds(t) {
		if msg := compareReference(s, 3); msg != "" {
			t.Errorf("%.60q: %s", s, msg)
		}
	}
}

// Result.User is balancer.AffinityKey of the unescaped "user" field, so
// the gateway can hand it to Affinity as the session without rehashing.
func TestUserIsAffinityKey(t *testing.T) {
	p := scan(t, []byte(`{"messages":[],"user":"al\u0069ce"}`), 8)
	if want := balancer.AffinityKey([]byte("alice")); p.res.User != want {
		t.Fatalf("user hash %x, want balancer.AffinityKey %x", p.res.User, want)
	}
}
