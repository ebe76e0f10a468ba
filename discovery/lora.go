package discovery

import (
	"encoding/binary"
	"encoding/json"
	"slices"
	"strings"
)

// Limits on the LoRA adapters a load may list (issue 14). They keep a
// heartbeat well inside MaxHeartbeatBytes: 64 names of 128 bytes are 8 KiB.
const (
	// MaxAdapters is the most adapter names a load lists, running and
	// waiting together.
	MaxAdapters = 64
	// MaxAdapterNameLen is the longest adapter name, in bytes.
	MaxAdapterNameLen = 128
)

// Adapters is the set of LoRA adapters a node's engine reports: those with
// running requests (loaded, serving) and those with waiting ones (vLLM's
// vllm:lora_requests_info labels running_lora_adapters and
// waiting_lora_adapters). The zero value is unknown (the engine reports no
// adapters state, or an old agent sent none); a known empty set is not
// zero. Build one with [NewAdapters].
//
// Adapters is an immutable value comparable with ==: it holds the names in
// canonical form (each list sorted and without duplicates), which is also
// its wire encoding, so equal sets compare and encode equal. Copy it
// freely.
type Adapters struct {
	// enc is "" when unknown, else the binary encoding of the two lists:
	// uvarint count then the names (each uvarint length and bytes),
	// running first.
	enc string
}

// NewAdapters returns the known set of running and waiting adapters, each
// list sorted and deduplicated (the arguments are not modified). An
// adapter name is 1..MaxAdapterNameLen printable ASCII bytes without
// spaces or commas (vLLM joins the names with commas in its metric label);
// at most MaxAdapters names in all. A violation is an *InputError naming
// the field: "load.lora.running", "load.lora.waiting".
func NewAdapters(running, waiting []string) (Adapters, error) {
	r := canonical(running)
	w := canonical(waiting)
	if err := checkAdapterList("load.lora.running", r, 0); err != nil {
		return Adapters{}, err
	}
	if err := checkAdapterList("load.lora.waiting", w, len(r)); err != nil {
		return Adapters{}, err
	}
	b := appendNames(nil, r)
	b = appendNames(b, w)
	return Adapters{enc: string(b)}, nil
}

func canonical(names []string) []string {
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}

// checkAdapterList checks names (canonical) given before names already
// listed; the error names field.
func checkAdapterList(field string, names []string, before int) error {
	if n := before + len(names); n > MaxAdapters {
		return inputErr(ReasonOversized, field, "%d adapters listed, at most %d", n, MaxAdapters)
	}
	for _, s := range names {
		if err := checkAdapterName(field, s); err != nil {
			return err
		}
	}
	return nil
}

func checkAdapterName(field, s string) error {
	if err := checkName(field, s, MaxAdapterNameLen); err != nil {
		return err
	}
	if strings.IndexByte(s, ',') >= 0 {
		return inputErr(ReasonInvalid, field, "adapter name %q contains a comma", s)
	}
	return nil
}

func appendNames(b []byte, names []string) []byte {
	b = binary.AppendUvarint(b, uint64(len(names)))
	for _, s := range names {
		b = appendStr(b, s)
	}
	return b
}

// Known reports whether the engine reported its adapters (possibly none).
func (a Adapters) Known() bool { return a.enc != "" }

// Running returns the adapters with running requests, sorted; nil when
// unknown. The slice is new.
func (a Adapters) Running() []string {
	r, _ := a.lists()
	return r
}

// Waiting returns the adapters with waiting requests, sorted; nil when
// unknown. The slice is new.
func (a Adapters) Waiting() []string {
	_, w := a.lists()
	return w
}

// Len is the number of names listed, running and waiting together (an
// adapter with both counts twice).
func (a Adapters) Len() int {
	r, w := a.lists()
	return len(r) + len(w)
}

// lists decodes enc (always well formed: built by NewAdapters or checked
// by decodeAdapters).
func (a Adapters) lists() (running, waiting []string) {
	if a.enc == "" {
		return nil, nil
	}
	d := decoder{b: []byte(a.enc)}
	running = d.names()
	waiting = d.names()
	return running, waiting
}

func (d *decoder) names() []string {
	n := d.count("load.lora", MaxAdapters)
	out := make([]string, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		out = append(out, d.str("load.lora", MaxAdapterNameLen))
	}
	return out
}

// decodeAdapters checks raw, the bytes of an encoded adapters set (without
// its length prefix), and returns the set. Anything but the canonical
// encoding of a valid set is an *InputError naming the field.
func decodeAdapters(raw []byte) (Adapters, error) {
	if len(raw) == 0 {
		return Adapters{}, nil
	}
	d := decoder{b: raw}
	total := 0
	for _, field := range [...]string{"load.lora.running", "load.lora.waiting"} {
		n := d.count(field, MaxAdapters)
		total += n
		if total > MaxAdapters && d.err == nil {
			d.fail(ReasonOversized, field, "%d adapters listed, at most %d", total, MaxAdapters)
		}
		prev := ""
		for i := 0; i < n && d.err == nil; i++ {
			s := d.raw(field, MaxAdapterNameLen)
			if d.err != nil {
				break
			}
			if err := checkAdapterName(field, string(s)); err != nil {
				return Adapters{}, err
			}
			if i > 0 && string(s) <= prev {
				d.fail(ReasonInvalid, field, "adapter names not sorted or repeated")
			}
			prev = string(s)
		}
	}
	if err := d.finish(); err != nil {
		return Adapters{}, err
	}
	return Adapters{enc: string(raw)}, nil
}

// adaptersJSON is the JSON form of a known Adapters.
type adaptersJSON struct {
	Running []string `json:"running"`
	Waiting []string `json:"waiting"`
}

// MarshalJSON implements json.Marshaler: {"running": [...], "waiting":
// [...]}, or null when unknown.
func (a Adapters) MarshalJSON() ([]byte, error) {
	if !a.Known() {
		return []byte("null"), nil
	}
	r, w := a.lists()
	return json.Marshal(adaptersJSON{Running: r, Waiting: w})
}

// UnmarshalJSON implements json.Unmarshaler: null gives unknown; the
// lists may come in any order and with repeats (they are made canonical);
// a list too long or a bad name is an *InputError naming the field.
func (a *Adapters) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*a = Adapters{}
		return nil
	}
	var j adaptersJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return inputErr(ReasonWrongType, "load.lora", "want {\"running\": [names], \"waiting\": [names]}: %v", err)
	}
	v, err := NewAdapters(j.Running, j.Waiting)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Is reports whether enc, the encoding of a set as a [HeartbeatView]
// carries it (empty when unknown), is a. It does not allocate.
func (a Adapters) Is(enc []byte) bool { return string(enc) == a.enc }

// AdaptersOf is NewAdapters for what an engine reported: instead of
// refusing the set, it keeps the valid names, at most MaxAdapters in all
// (running ones first), and returns how many names it dropped. Sources
// (the agent, scrapers) use it, so one odd adapter name cannot get a
// node's heartbeat refused.
func AdaptersOf(running, waiting []string) (a Adapters, dropped int) {
	keep := func(names []string, room int) []string {
		var out []string
		for _, s := range canonical(names) {
			if len(out) < room && checkAdapterName("", s) == nil {
				out = append(out, s)
			} else {
				dropped++
			}
		}
		return out
	}
	r := keep(running, MaxAdapters)
	w := keep(waiting, MaxAdapters-len(r))
	a, _ = NewAdapters(r, w)
	return a, dropped
}
