// Package testlog holds what tests use to capture logs and output.
package testlog

import (
	"bytes"
	"context"
	"sync"
)

// Buffer is a bytes.Buffer that a logger or a child process on other
// goroutines may write to while the test reads it, or waits for a line.
type Buffer struct {
	mu      sync.Mutex
	b       bytes.Buffer
	changed chan struct{} // closed at the next write; nil when nobody waits
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return n, err
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// WaitFor waits until what was written contains text, woken by each
// write, or until ctx ends; it reports whether the text came.
func (s *Buffer) WaitFor(ctx context.Context, text string) bool {
	for {
		s.mu.Lock()
		if bytes.Contains(s.b.Bytes(), []byte(text)) {
			s.mu.Unlock()
			return true
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return false
		}
	}
}
