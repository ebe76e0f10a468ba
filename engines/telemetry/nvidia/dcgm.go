package nvidia

import (
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/telemetry"
)

// DCGM field names read by ParseDCGM.
const (
	FieldGREngineActive = "DCGM_FI_PROF_GR_ENGINE_ACTIVE"
	FieldGPUUtil        = "DCGM_FI_DEV_GPU_UTIL"
	FieldFBUsed         = "DCGM_FI_DEV_FB_USED"
	FieldFBFree         = "DCGM_FI_DEV_FB_FREE"
	FieldFBTotal        = "DCGM_FI_DEV_FB_TOTAL"
)

// blank reports DCGM's "no value" sentinels: int32 blanks are
// 0x7ffffff0.. and int64 blanks 0x7ffffffffffffff0.. (DCGM_INT32_BLANK,
// DCGM_INT64_BLANK, NOT_FOUND, NOT_SUPPORTED, NOT_PERMISSIONED).
func blank(v float64) bool {
	return (v >= 0x7ffffff0 && v <= 0x7fffffff) || v >= 9.2233720368547e18
}

// ParseDCGM parses a dcgm-exporter /metrics exposition. Every series with
// a "gpu" label names a card; model comes from modelName (or
// DCGM_FI_DEV_NAME). Memory is FB_USED and FB_TOTAL (or USED+FREE), MiB.
func ParseDCGM(r io.Reader) (telemetry.Report, error) {
	m, err := engines.ParseMetrics(r)
	if err != nil {
		return telemetry.Report{}, fmt.Errorf("nvidia: dcgm: %w", err)
	}
	// Cards are keyed by UUID (by gpu index when there is none): one
	// exporter sees each GPU once, and merged scrapes keep hosts apart.
	cards := map[string]*telemetry.Card{}
	type memv struct{ used, free, total engines.Value }
	mem := map[string]*memv{}
	card := func(s engines.Sample, fam string) (*telemetry.Card, *memv, error) {
		g, ok := s.Labels["gpu"]
		if !ok {
			return nil, nil, nil
		}
		i, err := strconv.Atoi(g)
		if err != nil || i < 0 {
			return nil, nil, fmt.Errorf("nvidia: dcgm: %w: %s: bad gpu label %q", engines.ErrMalformed, fam, g)
		}
		key := s.Labels["UUID"]
		if key == "" {
			key = "gpu" + g
		}
		c := cards[key]
		if c == nil {
			c = &telemetry.Card{Index: i, ID: s.Labels["UUID"]}
			cards[key] = c
			mem[key] = &memv{}
		}
		if c.Model == "" {
			c.Model = s.Labels["modelName"]
			if c.Model == "" {
				c.Model = s.Labels["DCGM_FI_DEV_NAME"]
			}
		}
		return c, mem[key], nil
	}
	utilFam := FieldGPUUtil
	if m.Has(FieldGREngineActive) {
		utilFam = FieldGREngineActive
	}
	fams := make([]string, 0, len(m))
	for fam := range m {
		fams = append(fams, fam)
	}
	sort.Strings(fams)
	for _, fam := range fams {
		for _, s := range m.Samples(fam) {
			c, mv, err := card(s, fam)
			if err != nil {
				return telemetry.Report{}, err
			}
			if c == nil || blank(s.Value) {
				continue
			}
			what := fmt.Sprintf("nvidia: dcgm: %s{gpu=%q}", fam, s.Labels["gpu"])
			switch fam {
			case utilFam:
				v := s.Value
				if fam == FieldGREngineActive {
					if v < 0 || v > 1.0001 {
						return telemetry.Report{}, fmt.Errorf("%s = %g: %w: ratio outside 0..1", what, v, engines.ErrMalformed)
					}
					c.Utilization = engines.Known(v)
				} else if c.Utilization, err = telemetry.Percent(v, what); err != nil {
					return telemetry.Report{}, err
				}
			case FieldFBUsed, FieldFBFree, FieldFBTotal:
				if s.Value < 0 {
					return telemetry.Report{}, fmt.Errorf("%s = %g: %w: negative memory", what, s.Value, engines.ErrMalformed)
				}
				v := engines.Known(s.Value * telemetry.MiB)
				switch fam {
				case FieldFBUsed:
					mv.used = v
				case FieldFBFree:
					mv.free = v
				default:
					mv.total = v
				}
			}
		}
	}
	if len(cards) == 0 {
		return telemetry.Report{}, fmt.Errorf("nvidia: dcgm: %w: no series with a gpu label", telemetry.ErrNoDevices)
	}
	rep := telemetry.Report{Vendor: "nvidia", Source: "dcgm"}
	keys := make([]string, 0, len(cards))
	for k := range cards {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := cards[keys[i]], cards[keys[j]]
		if a.Index != b.Index {
			return a.Index < b.Index
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		c, mv := cards[k], mem[k]
		c.MemoryUsed = mv.used
		c.MemoryTotal = mv.total
		if !c.MemoryTotal.IsKnown() {
			u, ok1 := mv.used.Get()
			f, ok2 := mv.free.Get()
			if ok1 && ok2 {
				c.MemoryTotal = engines.Known(u + f)
			}
		}
		if t, ok := c.MemoryTotal.Get(); ok && t == 0 {
			c.MemoryTotal = engines.Unknown
		}
		rep.Cards = append(rep.Cards, *c)
	}
	rep.Finish()
	return rep, nil
}
