package sim

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"
)

// TestCloseWhileRequestsArrive: closing a node while requests hang and new
// ones keep arriving must be race-free (run under -race) and must return.
func TestCloseWhileRequestsArrive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	n, err := Start(ctx, Config{Model: "m", Profile: "h100"})
	if err != nil {
		t.Fatal(err)
	}
	n.Fail(ModeHang)
	client := &http.Client{Timeout: 5 * time.Second}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, n.URL()+"/v1/models", nil)
				if resp, err := client.Do(req); err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	time.Sleep(100 * time.Millisecond) // let requests pile up in the hang
	closed := make(chan struct{})
	go func() {
		n.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("Close did not return")
	}
	close(stop)
	wg.Wait()
}
