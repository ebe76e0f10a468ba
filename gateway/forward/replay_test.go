package forward

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// Once the call is over (close), an attempt's body reads nothing more,
// not even what is left of the first message: the prefix is the pooled
// call state's, and the next call overwrites it.
func TestReplayBodyStopsAtClose(t *testing.T) {
	prefix := bytes.Repeat([]byte("a"), 64<<10)
	st := &replayState{rest: strings.NewReader("rest of the stream")}
	b := &replayBody{pre: prefix, s: st}
	buf := make([]byte, 16<<10)
	if n, err := b.Read(buf); n != len(buf) || err != nil {
		t.Fatalf("first read: %d, %v; want %d, nil", n, err, len(buf))
	}
	st.close()
	clear(prefix) // the next call's
	if n, err := b.Read(buf); n != 0 || !errors.Is(err, errAbandoned) {
		t.Fatalf("read after close: %d, %v; want 0, errAbandoned", n, err)
	}
}

// The transport reads a body on its own goroutine: a read racing the
// call's end either comes before close or reads nothing (go test -race
// reports a read of the prefix after close).
func TestReplayBodyConcurrentClose(t *testing.T) {
	prefix := bytes.Repeat([]byte("a"), 1<<20)
	st := &replayState{rest: strings.NewReader("")}
	b := &replayBody{pre: prefix, s: st}
	done := make(chan error, 1)
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := b.Read(buf); err != nil {
				done <- err
				return
			}
		}
	}()
	st.close()
	clear(prefix)
	if err := <-done; !errors.Is(err, errAbandoned) && err != io.EOF {
		t.Fatalf("reader ended with %v", err)
	}
}

// A whole call read to its end ends with its last bytes, and an
// abandoned attempt reads nothing.
func TestReplayBodyEndAndAbandon(t *testing.T) {
	st := &replayState{rest: strings.NewReader(""), eof: true}
	b := &replayBody{pre: []byte("message"), s: st}
	buf := make([]byte, 64)
	if n, err := b.Read(buf); n != 7 || err != io.EOF {
		t.Fatalf("read of a whole call: %d, %v; want 7, EOF", n, err)
	}
	b2 := &replayBody{pre: []byte("message"), s: st}
	if touched := b2.abandon(); touched {
		t.Error("abandon reports client bytes read beyond the first message; none were")
	}
	if n, err := b2.Read(buf); n != 0 || !errors.Is(err, errAbandoned) {
		t.Fatalf("read after abandon: %d, %v; want 0, errAbandoned", n, err)
	}
}
