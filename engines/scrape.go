package engines

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// DefaultTimeout bounds Scrape and ProbeHealth when ctx has no deadline.
const DefaultTimeout = 2 * time.Second

// Scrape GETs metricsURL (an engine's metrics endpoint) and parses it
// with a. A nil client uses http.DefaultClient; ctx without a deadline
// gets DefaultTimeout.
//
// When the metrics endpoint answers 404 and a has a JSON fallback
// (FallbackLoader, e.g. SGLang's /v1/loads when --enable-metrics is off),
// the fallback on the same host is read instead; Load.Source says which
// one answered. Errors say what the engine is likely missing when its
// Spec knows: the setting that enables metrics (Spec.MetricsNeed), HTTPS
// by default (Spec.TLS), or a management address other than the serving
// one (Spec.ManagementAddr).
func Scrape(ctx context.Context, client *http.Client, metricsURL string, a Adapter) (Load, error) {
	spec := a.Spec()
	body, status, err := get(ctx, client, metricsURL)
	if err != nil {
		return Load{}, fmt.Errorf("engines: scrape %s: %w%s", metricsURL, err, transportHint(a.Name(), spec, err))
	}
	if status == http.StatusNotFound {
		if fb, ok := a.(FallbackLoader); ok && fb.FallbackPath() != "" {
			return scrapeFallback(ctx, client, metricsURL, fb)
		}
	}
	if status == http.StatusBadRequest && spec.TLS && strings.HasPrefix(metricsURL, "http:") {
		// What an HTTPS listener answers to plain HTTP (Go's, for one).
		return Load{}, fmt.Errorf("engines: scrape %s: status 400%s", metricsURL, tlsHint(a.Name()))
	}
	if status != http.StatusOK {
		return Load{}, fmt.Errorf("engines: scrape %s: status %d%s", metricsURL, status, needHint(a.Name(), spec))
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return Load{}, fmt.Errorf("engines: scrape %s: %w: empty answer%s", metricsURL, ErrMalformed, needHint(a.Name(), spec))
	}
	l, err := a.ParseLoad(bytes.NewReader(body))
	if errors.Is(err, ErrNoLoadMetrics) {
		return Load{}, fmt.Errorf("engines: scrape %s: %w%s", metricsURL, err, needHint(a.Name(), spec))
	}
	return l, err
}

func scrapeFallback(ctx context.Context, client *http.Client, metricsURL string, fb FallbackLoader) (Load, error) {
	u, err := url.Parse(metricsURL)
	if err != nil {
		return Load{}, fmt.Errorf("engines: scrape %s: %w", metricsURL, err)
	}
	u.Path, u.RawQuery, u.RawPath = fb.FallbackPath(), "", ""
	fallback := u.String()
	body, status, err := get(ctx, client, fallback)
	if err != nil {
		return Load{}, fmt.Errorf("engines: scrape %s: 404, and the fallback %s: %w", metricsURL, fallback, err)
	}
	if status != http.StatusOK {
		return Load{}, fmt.Errorf("engines: scrape %s: 404, and the fallback %s: status %d", metricsURL, fallback, status)
	}
	return fb.ParseFallback(bytes.NewReader(body))
}

// needHint names what enables the metrics endpoint, for a refusal or an
// empty or foreign answer.
func needHint(name string, spec Spec) string {
	if spec.MetricsNeed == "" {
		return ""
	}
	return fmt.Sprintf(" (%s serves %s only with %s)", name, spec.MetricsPath, spec.MetricsNeed)
}

func tlsHint(name string) string {
	return fmt.Sprintf(" (%s serves HTTPS by default: use an https:// URL, or set httpsEnabled to false)", name)
}

// transportHint explains connection and TLS failures from what the spec
// says about the engine's listeners.
func transportHint(name string, spec Spec, err error) string {
	var rh tls.RecordHeaderError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	switch {
	case strings.Contains(err.Error(), "malformed HTTP response") && spec.TLS:
		return tlsHint(name)
	case errors.As(err, &rh), strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return fmt.Sprintf(" (the server answered plain HTTP: use an http:// URL; %s has HTTPS turned off)", name)
	case errors.As(err, &ua), errors.As(err, &hn):
		return fmt.Sprintf(" (%s's certificate is not trusted: give the client the server's CA)", name)
	case errors.Is(err, syscall.ECONNREFUSED) && spec.ManagementAddr != "":
		return fmt.Sprintf(" (%s serves metrics on its management address, by default %s port %d, not on the inference port %d)",
			name, spec.ManagementAddr, spec.MetricsPort, spec.DefaultPort)
	}
	return ""
}

// ProbeHealth GETs base+spec.LivePath and base+spec.ReadyPath and
// classifies the answers with Spec.ClassifyReady. base is the engine's
// health base URL (Spec.HealthBase).
func ProbeHealth(ctx context.Context, client *http.Client, base string, spec Spec) Health {
	live := false
	if spec.LivePath != "" {
		if _, st, err := get(ctx, client, base+spec.LivePath); err == nil {
			live = st == http.StatusOK
		}
	}
	_, st, err := get(ctx, client, base+spec.ReadyPath)
	if err != nil {
		return spec.ClassifyReady(0, live)
	}
	if spec.LivePath == "" {
		live = st != 0
	}
	return spec.ClassifyReady(st, live)
}

// get fetches url and returns its whole body (capped at MaxInput+1
// bytes, so the parsers still report ErrTooLarge).
func get(ctx context.Context, client *http.Client, url string) ([]byte, int, error) {
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
	return b, resp.StatusCode, nil
}
