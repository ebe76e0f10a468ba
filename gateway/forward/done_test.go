package forward

import "testing"

// TestDoneScanner finds the end marker however the stream is cut into
// pieces, and not where it is absent.
func TestDoneScanner(t *testing.T) {
	stream := "data: {\"choices\":[]}\n\ndata: [DONE]\n\n"
	for a := 0; a <= len(stream); a++ {
		for b := a; b <= len(stream); b++ {
			var d doneScanner
			got := d.scan([]byte(stream[:a])) || d.scan([]byte(stream[a:b])) || d.scan([]byte(stream[b:]))
			if !got {
				t.Fatalf("missed the marker split at %d, %d", a, b)
			}
		}
	}
	partial := "data: {\"choices\":[]}\n\ndata: [DONE"
	for a := 0; a <= len(partial); a++ {
		var d doneScanner
		if d.scan([]byte(partial[:a])) || d.scan([]byte(partial[a:])) {
			t.Fatalf("found a marker in %q split at %d", partial, a)
		}
	}
	var d doneScanner
	for _, c := range []byte("xxdata: [DONE]") { // one byte at a time
		if d.scan([]byte{c}) {
			return
		}
	}
	t.Fatal("missed the marker read byte by byte")
}
