// Package amd parses AMD GPU telemetry from `rocm-smi --json` (for
// example `rocm-smi --showuse --showmeminfo vram --showproductname
// --json`). rocm-smi may print WARNING lines and a blank line before the
// JSON object; those are skipped. Stateless and safe for concurrent use.
package amd
