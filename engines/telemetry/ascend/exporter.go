package ascend

import (
	"fmt"
	"io"
	"sort"
	"strconv"

	"github.com/switchyard-dev/switchyard/engines"
	"github.com/switchyard-dev/switchyard/engines/telemetry"
)

// ParseExporter parses the Ascend npu-exporter's metrics (samples carry
// trailing millisecond timestamps, which expfmt accepts). Cards come from
// the "id" label; utilisation is npu_chip_info_utilization (percent);
// memory is npu_chip_info_hbm_{used,total}_memory, else
// npu_chip_info_{used,total}_memory (MB). A total of 0 means "not
// reported" and gives Unknown memory.
func ParseExporter(r io.Reader) (telemetry.Report, error) {
	m, err := engines.ParseMetrics(r)
	if err != nil {
		return telemetry.Report{}, fmt.Errorf("ascend: npu-exporter: %w", err)
	}
	cards := map[int]*telemetry.Card{}
	mem := map[int]map[string]float64{}
	get := func(fam string, s engines.Sample) (*telemetry.Card, error) {
		id, ok := s.Labels["id"]
		if !ok {
			return nil, nil
		}
		i, err := strconv.Atoi(id)
		if err != nil || i < 0 {
			return nil, fmt.Errorf("ascend: npu-exporter: %w: %s: bad id label %q", engines.ErrMalformed, fam, id)
		}
		c := cards[i]
		if c == nil {
			c = &telemetry.Card{Index: i, ID: s.Labels["pcie_bus_info"]}
			cards[i] = c
			mem[i] = map[string]float64{}
		}
		if c.Model == "" {
			c.Model = s.Labels["model_name"]
		}
		if c.Model == "" && fam == "npu_chip_info_name" {
			c.Model = s.Labels["name"]
		}
		return c, nil
	}
	names := []string{"npu_chip_info_name", "npu_chip_info_utilization", "npu_chip_info_hbm_used_memory", "npu_chip_info_hbm_total_memory", "npu_chip_info_used_memory", "npu_chip_info_total_memory", "npu_chip_info_health_status"}
	for _, fam := range names {
		for _, s := range m.Samples(fam) {
			c, err := get(fam, s)
			if err != nil {
				return telemetry.Report{}, err
			}
			if c == nil {
				continue
			}
			what := fmt.Sprintf("ascend: npu-exporter: %s{id=%q}", fam, s.Labels["id"])
			switch fam {
			case "npu_chip_info_utilization":
				if c.Utilization, err = telemetry.Percent(s.Value, what); err != nil {
					return telemetry.Report{}, err
				}
			case "npu_chip_info_name", "npu_chip_info_health_status":
			default:
				if s.Value < 0 {
					return telemetry.Report{}, fmt.Errorf("%s = %g: %w: negative memory", what, s.Value, engines.ErrMalformed)
				}
				mem[c.Index][fam] = s.Value
			}
		}
	}
	if len(cards) == 0 {
		return telemetry.Report{}, fmt.Errorf("ascend: npu-exporter: %w: no npu_chip_info_* series with an id label", telemetry.ErrNoDevices)
	}
	rep := telemetry.Report{Vendor: "ascend", Source: "npu-exporter"}
	idx := make([]int, 0, len(cards))
	for i := range cards {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	for _, i := range idx {
		c, mv := cards[i], mem[i]
		for _, p := range [][2]string{{"npu_chip_info_hbm_used_memory", "npu_chip_info_hbm_total_memory"}, {"npu_chip_info_used_memory", "npu_chip_info_total_memory"}} {
			if t := mv[p[1]]; t > 0 {
				c.MemoryTotal = engines.Known(t * telemetry.MiB)
				if u, ok := mv[p[0]]; ok {
					c.MemoryUsed = engines.Known(u * telemetry.MiB)
				}
				break
			}
		}
		rep.Cards = append(rep.Cards, *c)
	}
	rep.Finish()
	return rep, nil
}
