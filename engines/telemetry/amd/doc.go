// Package amd parses AMD GPU telemetry from AMD SMI and ROCm SMI.
//
// `amd-smi metric --json` (ParseAMDSMI; AMD SMI replaces ROCm SMI) comes in
// two shapes: a plain array of per-GPU objects in older releases and
// {"gpu_data": [...]} in newer ones; leaves are {"value": N, "unit": U} or
// bare numbers, "N/A" when not supported. Utilisation is
// usage.gfx_activity. The card name is not in `metric`: RunAMDSMI adds it
// from `amd-smi static --asic --json` (asic.market_name).
//
// `rocm-smi --json` (ParseSMI; for example `rocm-smi --showuse
// --showmeminfo vram --showproductname --json`) may print WARNING lines
// and a blank line before the JSON object; both parsers skip them.
// Stateless and safe for concurrent use.
package amd
