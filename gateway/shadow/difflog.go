package shadow

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
)

// diffLog writes difference reports as JSON lines from one goroutine,
// rotating by size and keeping at most MaxFiles files. Entries are handed
// over through a bounded channel; when it is full they are dropped and
// counted, so the request path never waits for the disk.
type diffLog struct {
	// immutable
	cfg  LogConfig
	in   chan *Report
	done chan struct{}

	// c counts lines; shared with the route's other logs (Registry)
	c *logCounters

	// owned by the writer goroutine
	f    *os.File
	w    *bufio.Writer
	size int64

	stopOnce sync.Once
	stop     chan struct{}
}

// logCounters count a route's difference log lines. Atomic.
type logCounters struct {
	written, dropped, failed atomic.Int64
}

// newDiffLog opens the log and starts its writer; c receives its counts.
func newDiffLog(ctx context.Context, cfg LogConfig, c *logCounters) (*diffLog, error) {
	l := &diffLog{cfg: cfg, c: c, in: make(chan *Report, cfg.QueueSize), done: make(chan struct{}), stop: make(chan struct{})}
	if err := l.open(); err != nil {
		return nil, err
	}
	go l.run(ctx)
	return l, nil
}

// offer queues r without blocking; false when the queue is full.
func (l *diffLog) offer(r *Report) bool {
	select {
	case l.in <- r:
		return true
	default:
		l.c.dropped.Add(1)
		return false
	}
}

// close stops the writer after it has written what is queued, and closes
// the file.
func (l *diffLog) close() {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
}

// run is the writer goroutine; it returns on close or when ctx is done,
// after writing what is queued.
func (l *diffLog) run(ctx context.Context) {
	defer close(l.done)
	defer func() {
		if l.f != nil {
			_ = l.w.Flush()
			_ = l.f.Close()
		}
	}()
	for {
		select {
		case r := <-l.in:
			l.write(r)
			// Flush when the queue is empty, so a burst costs one write.
			if len(l.in) == 0 && l.f != nil {
				if err := l.w.Flush(); err != nil {
					l.c.failed.Add(1)
				}
			}
		case <-ctx.Done():
			l.drain()
			return
		case <-l.stop:
			l.drain()
			return
		}
	}
}

func (l *diffLog) drain() {
	for {
		select {
		case r := <-l.in:
			l.write(r)
		default:
			return
		}
	}
}

func (l *diffLog) write(r *Report) {
	line, err := json.Marshal(r)
	if err != nil {
		l.c.failed.Add(1)
		return
	}
	line = append(line, '\n')
	if int64(len(line)) > l.cfg.MaxFileBytes {
		l.c.dropped.Add(1) // one line would not fit in any file
		return
	}
	if l.size+int64(len(line)) > l.cfg.MaxFileBytes {
		if err := l.rotate(); err != nil {
			l.c.failed.Add(1)
			return
		}
	}
	if l.f == nil {
		if err := l.open(); err != nil {
			l.c.failed.Add(1)
			return
		}
	}
	n, err := l.w.Write(line)
	l.size += int64(n)
	if err != nil {
		l.c.failed.Add(1)
		return
	}
	l.c.written.Add(1)
}

func (l *diffLog) open() error {
	f, err := os.OpenFile(l.cfg.Path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("shadow: open log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("shadow: stat log: %w", err)
	}
	l.f, l.w, l.size = f, bufio.NewWriterSize(f, 64<<10), st.Size()
	return nil
}

// rotate closes the active file and shifts Path → Path.1 → … →
// Path.(MaxFiles-1), removing the oldest, then opens a new active file.
func (l *diffLog) rotate() error {
	if l.f != nil {
		_ = l.w.Flush()
		_ = l.f.Close()
		l.f = nil
	}
	p := l.cfg.Path
	if l.cfg.MaxFiles <= 1 {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("shadow: rotate log: %w", err)
		}
		return l.open()
	}
	last := p + "." + strconv.Itoa(l.cfg.MaxFiles-1)
	if err := os.Remove(last); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("shadow: rotate log: %w", err)
	}
	for i := l.cfg.MaxFiles - 2; i >= 1; i-- {
		from := p + "." + strconv.Itoa(i)
		if err := os.Rename(from, p+"."+strconv.Itoa(i+1)); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("shadow: rotate log: %w", err)
		}
	}
	if err := os.Rename(p, p+".1"); err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("shadow: rotate log: %w", err)
	}
	return l.open()
}
