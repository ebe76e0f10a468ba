package engines

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// DefaultTimeout bounds Scrape and ProbeHealth when ctx has no deadline.
const DefaultTimeout = 2 * time.Second

// Scrape GETs url (an engine's metrics endpoint) and parses it with a.
// A nil client uses http.DefaultClient; ctx without a deadline gets
// DefaultTimeout.
func Scrape(ctx context.Context, client *http.Client, url string, a Adapter) (Load, error) {
	body, status, err := get(ctx, client, url)
	if err != nil {
		return Load{}, fmt.Errorf("engines: scrape %s: %w", url, err)
	}
	defer body.Close()
	if status != http.StatusOK {
		return Load{}, fmt.Errorf("engines: scrape %s: status %d", url, status)
	}
	return a.ParseLoad(body)
}

// ProbeHealth GETs base+spec.LivePath and base+spec.ReadyPath and
// classifies the answers with Spec.ClassifyReady.
func ProbeHealth(ctx context.Context, client *http.Client, base string, spec Spec) Health {
	live := false
	if spec.LivePath != "" {
		if b, st, err := get(ctx, client, base+spec.LivePath); err == nil {
			b.Close()
			live = st == http.StatusOK
		}
	}
	b, st, err := get(ctx, client, base+spec.ReadyPath)
	if err != nil {
		return spec.ClassifyReady(0, live)
	}
	b.Close()
	if spec.LivePath == "" {
		live = st != 0
	}
	return spec.ClassifyReady(st, live)
}

// get fetches url and returns its whole body (capped at MaxInput+1
// bytes, so ParseMetrics still reports ErrTooLarge).
func get(ctx context.Context, client *http.Client, url string) (io.ReadCloser, int, error) {
	if client == nil {
		client = http.DefaultClient
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, DefaultTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxInput+1))
	if err != nil {
		return nil, 0, err
	}
	return io.NopCloser(bytes.NewReader(b)), resp.StatusCode, nil
}
