// Package machine describes the machine a benchmark ran on, for reports.
package machine

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// Describe returns a Markdown list: CPU model, cores, memory, kernel, Go
// version and the date.
func Describe() string {
	var b strings.Builder
	model := field("/proc/cpuinfo", "model name")
	fmt.Fprintf(&b, "- CPU: %s; %d logical CPUs online (%s), %d usable by this process (its CPU affinity)\n",
		orUnknown(model), count("/proc/cpuinfo", "processor"), orUnknown(firstLine("/sys/devices/system/cpu/online")), runtime.NumCPU())
	fmt.Fprintf(&b, "- Memory: %s\n", orUnknown(field("/proc/meminfo", "MemTotal")))
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		fmt.Fprintf(&b, "- Kernel: %s\n", strings.TrimSpace(string(out)))
	}
	fmt.Fprintf(&b, "- OS: %s\n", orUnknown(strings.Trim(field("/etc/os-release", "PRETTY_NAME"), `"`)))
	fmt.Fprintf(&b, "- Go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if bi, ok := debug.ReadBuildInfo(); ok {
		var rev, mod string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				mod = s.Value
			}
		}
		if rev != "" {
			note := ""
			if mod == "true" {
				note = " plus uncommitted changes in the work tree"
			}
			fmt.Fprintf(&b, "- Switchyard binary built from commit %s%s\n", rev, note)
		}
	}
	// Builds made with -buildvcs=false carry no revision: ask git about
	// the directory the report is written from.
	if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		note := ""
		// Results (bench/results, where reports are written, often this
		// one's own charts by now) do not go into the binary.
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no", "--", ":(top,exclude)bench/results").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
			note = " (the work tree also had uncommitted changes, possibly in the binary)"
		}
		fmt.Fprintf(&b, "- Work tree at commit %s%s\n", strings.TrimSpace(string(out)), note)
	}
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

// count returns how many lines of path start with key.
func count(path, key string) int {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, _, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == key {
			n++
		}
	}
	return n
}

func firstLine(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	l, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return l
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
