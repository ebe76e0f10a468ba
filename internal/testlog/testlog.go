// Package testlog holds what tests use to capture logs and output.
package testlog

import (
	"bytes"
	"sync"
)

// Buffer is a bytes.Buffer that a logger or a child process on other
// goroutines may write to while the test reads it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
