// Package cpu reads CPU telemetry: /proc/stat (utilisation between two
// samples) and the cgroup v2 cpu.max quota (how many cores this
// container may use). Stateless and safe for concurrent use.
package cpu
