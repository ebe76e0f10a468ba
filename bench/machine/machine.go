// Package machine describes the machine a benchmark ran on, for reports.
package machine

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Describe returns a Markdown list: CPU model, cores, memory, kernel, Go
// version and the date.
func Describe() string {
	var b strings.Builder
	model := field("/proc/cpuinfo", "model name")
	fmt.Fprintf(&b, "- CPU: %s; %d logical CPUs (runtime.NumCPU)\n", orUnknown(model), runtime.NumCPU())
	fmt.Fprintf(&b, "- Memory: %s\n", orUnknown(field("/proc/meminfo", "MemTotal")))
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		fmt.Fprintf(&b, "- Kernel: %s\n", strings.TrimSpace(string(out)))
	}
	fmt.Fprintf(&b, "- OS: %s\n", orUnknown(strings.Trim(field("/etc/os-release", "PRETTY_NAME"), `"`)))
	fmt.Fprintf(&b, "- Go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(&b, "- Load average when the report was written (1, 5, 15 min): %s (the machine is shared; other work was running)\n", strings.Join(strings.Fields(string(la))[:3], ", "))
	}
	fmt.Fprintf(&b, "- Date: %s\n", time.Now().UTC().Format(time.RFC3339))
	return b.String()
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// field returns the value of the first "key: value" or "key=value" line.
func field(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		for _, sep := range []string{":", "="} {
			k, v, ok := strings.Cut(line, sep)
			if ok && strings.TrimSpace(k) == key {
				return strings.TrimSpace(v)
			}
		}
	}
	return ""
}
