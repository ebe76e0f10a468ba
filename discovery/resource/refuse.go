package resource

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"

	"github.com/switchyard-dev/switchyard/discovery"
)

// refusal is a decoded, valid heartbeat (or request) this instance refuses:
// its credential may not announce it, a limit is reached, or its
// incarnation is stale or too far in the future. It becomes a Reject frame
// or an HTTP error naming the reason, the field and the problem.
type refusal struct {
	reason  discovery.Reason
	field   string
	problem string
	// hint is the incarnation the agent should adopt (0: none); see
	// discovery.Reject.Incarnation.
	hint uint64
}

func (r *refusal) Error() string {
	if r.field == "" {
		return fmt.Sprintf("resource: %s: %s", r.reason, r.problem)
	}
	return fmt.Sprintf("resource: %s: field %q: %s", r.reason, r.field, r.problem)
}

// status is the HTTP status of a refusal.
func (r *refusal) status() int {
	switch r.reason {
	case discovery.ReasonBadToken:
		return http.StatusUnauthorized
	case discovery.ReasonForbidden:
		return http.StatusForbidden
	case discovery.ReasonLimit:
		return http.StatusTooManyRequests
	case discovery.ReasonStale:
		return http.StatusConflict
	}
	return http.StatusBadRequest
}

func refuse(reason discovery.Reason, field, format string, args ...any) *refusal {
	return &refusal{reason: reason, field: field, problem: fmt.Sprintf(format, args...)}
}

// logLimiter bounds the log lines a client can cause (refusals are logged,
// and a hostile client can send many): at most limitPerSecond lines per
// second, then one line saying how many were suppressed. Safe for
// concurrent use.
type logLimiter struct {
	mu         sync.Mutex
	sec        int64 // guarded by mu: the current second (unix)
	n          int   // guarded by mu: lines logged in sec
	suppressed int   // guarded by mu: lines dropped since the last report
}

const limitPerSecond = 20

// log logs msg at level unless the budget of the current second is spent.
// now is unix nanoseconds.
func (l *logLimiter) log(log *slog.Logger, now int64, level slog.Level, msg string, args ...any) {
	if !log.Enabled(context.Background(), level) {
		return
	}
	l.mu.Lock()
	sec := now / 1e9
	if sec != l.sec {
		l.sec, l.n = sec, 0
	}
	if l.n >= limitPerSecond {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	l.n++
	suppressed := l.suppressed
	l.suppressed = 0
	l.mu.Unlock()
	if suppressed > 0 {
		args = append(args, "suppressed_before", suppressed)
	}
	log.Log(context.Background(), level, msg, args...)
}
