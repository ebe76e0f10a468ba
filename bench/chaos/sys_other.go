//go:build !linux

package chaos

import (
	"errors"
	"syscall"
)

// errUnsupported: the suite reads /proc (leftover processes, the
// gateway's memory) and uses the parent-death signal, which only Linux
// has.
var errUnsupported = errors.New("chaos: the suite runs on Linux only (it reads /proc)")

func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func markedProcesses(string) []int { return nil }

func memory(int) (rss, peak int64, err error) { return 0, 0, errUnsupported }

func supported() error { return errUnsupported }
