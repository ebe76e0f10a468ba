package upstream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
)

// Body is a streamed HTTP/1.1 response body, read straight from its
// connection's buffer: Next hands out the bytes as they arrive, without a
// copy (a relay writes them on from there), and Read is the io.Reader for
// callers that want one. It follows the response's framing (a
// Content-Length, chunked, or read until the node closes) and consumes
// the chunked trailer, so that a connection whose body ended cleanly can
// be reused.
//
// A body the node cuts short — the connection closed before the declared
// length, or before the terminal chunk — ends in io.ErrUnexpectedEOF, and
// broken chunked framing in ErrBadChunk: never in io.EOF, so a broken
// stream is never passed off as complete. Only a body read until the
// node's close ends in io.EOF there (the caller judges that one by its
// content).
//
// A Body lives in its Call (Call.Body) and is valid until Call.Done. Not
// safe for concurrent use.
type Body struct {
	br   *bufio.Reader
	mode bodyMode
	left int64 // bytes left: of the body (fixed) or of the current chunk
	held int   // bytes the last Next handed out, consumed at the next call
	crlf bool  // chunked: the CRLF closing a chunk's data is still unread
	err  error // sticky: io.EOF when the body ended, or why it failed
}

type bodyMode uint8

const (
	bodyFixed      bodyMode = iota // Content-Length
	bodyChunked                    // Transfer-Encoding: chunked
	bodyUntilClose                 // neither: the body ends when the node closes
)

// ErrBadChunk: the node's chunked framing is malformed.
var ErrBadChunk = errors.New("gateway: malformed chunked body from the node")

// maxTrailerBytes bounds the trailer section after the terminal chunk.
const maxTrailerBytes = 8 << 10

// reset readies b for a body of contentLength (fasthttp's convention: -1
// chunked, -2 read until close) on br.
func (b *Body) reset(br *bufio.Reader, contentLength int) {
	*b = Body{br: br}
	switch {
	case contentLength >= 0:
		b.mode, b.left = bodyFixed, int64(contentLength)
	case contentLength == -1:
		b.mode = bodyChunked
	default:
		b.mode = bodyUntilClose
	}
}

// Next returns the next piece of the body as soon as at least one byte of
// it is there: a slice of the connection's buffer, valid until the next
// call to Next or Read. At the end it returns io.EOF (or the failure), with
// no bytes.
func (b *Body) Next() ([]byte, error) {
	b.consume()
	p, err := b.peek()
	b.held = len(p)
	return p, err
}

// Read reads the next bytes of the body into p (io.Reader).
func (b *Body) Read(p []byte) (int, error) {
	b.consume()
	if len(p) == 0 {
		return 0, nil
	}
	q, err := b.peek()
	n := copy(p, q)
	b.held = n
	if n < len(q) {
		err = nil
	}
	return n, err
}

// Complete reports whether the body was read to its end, trailer
// included, so that the connection is where the next response starts.
func (b *Body) Complete() bool { return b.err == io.EOF && b.mode != bodyUntilClose }

// consume drops the bytes handed out last.
func (b *Body) consume() {
	if b.held == 0 {
		return
	}
	_, _ = b.br.Discard(b.held) // they are buffered: it cannot fail
	if b.mode != bodyUntilClose {
		b.left -= int64(b.held)
	}
	b.held = 0
}

// peek returns what is buffered of the body (waiting for at least one
// byte), without consuming it.
func (b *Body) peek() ([]byte, error) {
	if b.err != nil {
		return nil, b.err
	}
	switch b.mode {
	case bodyUntilClose:
		p, err := b.buffered(math.MaxInt64)
		if err != nil {
			return nil, b.fail(err) // io.EOF: the node closed, the body ended
		}
		return p, nil
	case bodyChunked:
		if b.left == 0 {
			if err := b.nextChunk(); err != nil {
				return nil, b.fail(err)
			}
		}
	}
	if b.left == 0 {
		return nil, b.fail(io.EOF)
	}
	p, err := b.buffered(b.left)
	if err != nil {
		return nil, b.fail(cut(err))
	}
	return p, nil
}

// buffered waits until the buffer holds at least one byte, then returns
// up to limit of the buffered bytes.
func (b *Body) buffered(limit int64) ([]byte, error) {
	if b.br.Buffered() == 0 {
		if _, err := b.br.Peek(1); err != nil {
			return nil, err
		}
	}
	n := b.br.Buffered()
	if int64(n) > limit {
		n = int(limit)
	}
	return b.br.Peek(n)
}

func (b *Body) fail(err error) error {
	b.err = err
	return err
}

// cut turns the end of the connection inside a body into
// io.ErrUnexpectedEOF.
func cut(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// nextChunk reads up to the next chunk's data: the CRLF that closed the
// previous chunk, then the chunk-size line (RFC 9112 §7.1). At the last
// chunk it reads the trailer section and returns io.EOF.
func (b *Body) nextChunk() error {
	if b.crlf {
		p, err := b.br.Peek(2)
		if err != nil {
			return cut(err)
		}
		if p[0] != '\r' || p[1] != '\n' {
			return fmt.Errorf("%w: no CRLF after a chunk", ErrBadChunk)
		}
		_, _ = b.br.Discard(2)
		b.crlf = false
	}
	line, err := b.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return fmt.Errorf("%w: chunk-size line too long", ErrBadChunk)
	case err != nil:
		return cut(err)
	}
	size, err := parseChunkSize(line)
	if err != nil {
		return err
	}
	if size == 0 {
		if err := b.readTrailer(); err != nil {
			return err
		}
		return io.EOF
	}
	b.left, b.crlf = size, true
	return nil
}

// maxChunkHexDigits bounds a chunk size (15 hex digits: below 2^60).
const maxChunkHexDigits = 15

// parseChunkSize parses a chunk-size line, CRLF included: hex digits,
// optional whitespace, optional extensions (ignored), as fasthttp's
// parser accepts them; a bare LF anywhere is refused (it is how request
// smuggling through proxies that disagree on line ends starts).
func parseChunkSize(line []byte) (int64, error) {
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return 0, fmt.Errorf("%w: chunk-size line without CRLF", ErrBadChunk)
	}
	line = line[:len(line)-2]
	var size int64
	i := 0
	for ; i < len(line); i++ {
		d := unhex(line[i])
		if d < 0 {
			break
		}
		if i == maxChunkHexDigits {
			return 0, fmt.Errorf("%w: chunk size too large", ErrBadChunk)
		}
		size = size<<4 | int64(d)
	}
	if i == 0 {
		return 0, fmt.Errorf("%w: no chunk size", ErrBadChunk)
	}
	rest := line[i:]
	ws := len(rest) - len(bytes.TrimLeft(rest, " \t"))
	rest = rest[ws:]
	switch {
	case len(rest) == 0:
	case rest[0] == ';' && ws == 0:
		if bytes.IndexByte(rest, '\r') >= 0 {
			return 0, fmt.Errorf("%w: CR in a chunk extension", ErrBadChunk)
		}
	default:
		return 0, fmt.Errorf("%w: unexpected byte after the chunk size", ErrBadChunk)
	}
	return size, nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// readTrailer consumes the trailer section after the last chunk: header
// lines up to an empty line, each ending in CRLF, at most
// maxTrailerBytes. Trailers are not passed on.
func (b *Body) readTrailer() error {
	total := 0
	for {
		line, err := b.br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			return fmt.Errorf("%w: trailer line too long", ErrBadChunk)
		case err != nil:
			return cut(err)
		}
		if total += len(line); total > maxTrailerBytes {
			return fmt.Errorf("%w: trailer section too long", ErrBadChunk)
		}
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return fmt.Errorf("%w: trailer line without CRLF", ErrBadChunk)
		}
		if len(line) == 2 {
			return nil
		}
	}
}
