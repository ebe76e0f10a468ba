package agent

import (
	"log/slog"
	"strings"
	"sync"
	"time"
)

// AnomalyLog logs the anomalies of the agent's samples (issue 13) at
// warning level: engine values out of range, which engines drops and
// describes (engines.Load.Notes), and values the agent clamps before
// sending. A misreporting exporter repeats its anomaly on every scrape,
// so each distinct anomaly is logged at most once a minute, with the
// number of repeats not logged since. The agent has no metrics registry
// of its own: the log is the count (repeats), and the heartbeat carries
// the rest of the sample as usual.
//
// An AnomalyLog is safe for concurrent use; a nil one logs nothing.
type AnomalyLog struct {
	// immutable
	logger *slog.Logger
	every  time.Duration
	now    func() time.Time

	mu   sync.Mutex
	seen map[string]*anomalySeen // guarded by mu; key: what went wrong, where
}

type anomalySeen struct {
	logged  time.Time
	repeats int // since logged
}

// maxAnomalyKeys bounds the distinct anomalies remembered (one per
// series of a misreporting exporter at worst).
const maxAnomalyKeys = 256

// NewAnomalyLog returns an AnomalyLog writing to logger
// (slog.Default() if nil), once a minute per distinct anomaly.
func NewAnomalyLog(logger *slog.Logger) *AnomalyLog {
	return newAnomalyLog(logger, time.Minute, time.Now)
}

func newAnomalyLog(logger *slog.Logger, every time.Duration, now func() time.Time) *AnomalyLog {
	if logger == nil {
		logger = slog.Default()
	}
	return &AnomalyLog{logger: logger, every: every, now: now, seen: map[string]*anomalySeen{}}
}

// engineNote logs one of engines.Load.Notes ("series = value: reason").
// The value is not part of the key: the same series out of range with a
// new value each scrape is one anomaly.
func (a *AnomalyLog) engineNote(engine, note string) {
	key := note
	if series, rest, ok := strings.Cut(note, " = "); ok {
		if _, reason, ok := strings.Cut(rest, ": "); ok {
			key = series + ": " + reason
		}
	}
	a.warn("engine:"+engine+":"+key, "agent: engine reported a value out of range; dropped, the rest of the sample kept",
		"engine", engine, "anomaly", note)
}

// clamped logs a value the agent clamped into [lo, hi].
func (a *AnomalyLog) clamped(field string, v, lo, hi float64) {
	a.warn("clamped:"+field, "agent: value out of range; clamped", "field", field, "value", v, "min", lo, "max", hi)
}

// warn logs msg unless key was logged less than every ago.
func (a *AnomalyLog) warn(key, msg string, args ...any) {
	if a == nil {
		return
	}
	now := a.now()
	a.mu.Lock()
	s, ok := a.seen[key]
	if ok && now.Sub(s.logged) < a.every {
		s.repeats++
		a.mu.Unlock()
		return
	}
	repeats := 0
	if ok {
		repeats = s.repeats
		s.logged, s.repeats = now, 0
	} else {
		if len(a.seen) >= maxAnomalyKeys {
			a.pruneLocked(now)
		}
		a.seen[key] = &anomalySeen{logged: now}
	}
	a.mu.Unlock()
	a.logger.Warn(msg, append(args, "repeats_not_logged", repeats)...)
}

// pruneLocked forgets anomalies not logged within every, or all of them
// if that frees nothing.
func (a *AnomalyLog) pruneLocked(now time.Time) {
	for k, s := range a.seen {
		if now.Sub(s.logged) >= a.every {
			delete(a.seen, k)
		}
	}
	if len(a.seen) >= maxAnomalyKeys {
		clear(a.seen)
	}
}
