package discovery

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// ErrOldServer is returned by [Handshake] when the server answered a
// Version2 preamble with HTTP: it is a Resource that only speaks Version1.
// Redial and hand-shake with Version1.
var ErrOldServer = errors.New("discovery: the server speaks only version 1 of the framed protocol")

// RejectError is a Reject frame received in answer to a Hello. Match the
// reason with errors.Is(err, ErrBadToken) or errors.Is(err, ErrForbidden).
type RejectError struct{ Reject }

func (e *RejectError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("discovery: rejected: %s: field %q: %s", e.Reason, e.Field, e.Problem)
	}
	return fmt.Sprintf("discovery: rejected: %s: %s", e.Reason, e.Problem)
}

// Unwrap returns ErrBadToken or ErrForbidden for those reasons.
func (e *RejectError) Unwrap() error {
	switch e.Reason {
	case ReasonBadToken:
		return ErrBadToken
	case ReasonForbidden:
		return ErrForbidden
	}
	return nil
}

// Handshake opens a framed connection: it writes v's preamble and h to w
// and reads the answer from br (the same connection). It returns the
// server's instance id from its Welcome, a *RejectError when the server
// refused the Hello, or ErrOldServer when a Version2 preamble got an HTTP
// answer. The caller sets the connection's deadlines.
func Handshake(w io.Writer, br *bufio.Reader, v Version, h Hello) (instance uint64, err error) {
	msg := append([]byte(v.Preamble()), AppendHelloFrame(nil, h)...)
	if _, err := w.Write(msg); err != nil {
		return 0, fmt.Errorf("discovery: hello: %w", err)
	}
	if head, err := br.Peek(4); err == nil && string(head) == "HTTP" {
		if v >= Version2 {
			return 0, ErrOldServer
		}
		return 0, errors.New("discovery: hello: the server answered HTTP")
	}
	typ, p, _, err := ReadFrame(br, MaxAgentFrame, nil)
	if err != nil {
		return 0, fmt.Errorf("discovery: hello: %w", err)
	}
	switch typ {
	case FrameWelcome:
		id, err := DecodeUvarint(p, "instance_id")
		if err != nil {
			return 0, fmt.Errorf("discovery: welcome: %w", err)
		}
		return id, nil
	case FrameReject:
		r, err := DecodeReject(p, v)
		if err != nil {
			return 0, fmt.Errorf("discovery: hello rejected, undecodable reject: %w", err)
		}
		return 0, &RejectError{r}
	}
	return 0, fmt.Errorf("discovery: hello: unexpected frame type %d", typ)
}
