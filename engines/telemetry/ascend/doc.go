// Package ascend parses Huawei Ascend NPU telemetry: the `npu-smi info`
// table, `npu-smi info -t usages -i ID`, and the Ascend npu-exporter's
// Prometheus metrics.
//
// The npu-smi table changes across chip generations (910A/910B show one
// chip per NPU, Atlas A3 shows two dies per NPU with a Phy-ID column,
// 310P shows DDR instead of HBM, Ascend 950 (A5) has an "NPU ID" column,
// continuation rows whose first cells are empty and "NPU Util(%)" where
// older tables say "AICore(%)"), so it is parsed by its header columns,
// never by fixed positions: each device row is split into cells at '|',
// each cell into whitespace tokens (joining "used / total" pairs), and
// tokens are matched to the header's column names. Every chip/die is one
// Card, because that is the device inference engines schedule on.
//
// Stateless and safe for concurrent use.
package ascend
