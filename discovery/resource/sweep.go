package resource

import (
	"context"
	"math"
	"sort"
	"time"

	"github.com/switchyard-dev/switchyard/discovery"
)

// sweepLoop checks liveness every SweepInterval.
func (s *Server) sweepLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sweep(s.now().UnixNano())
		}
	}
}

type expiry struct {
	rec     *record
	silence int64
	own     bool
}

// sweep runs the liveness state machine at now (unix nanoseconds):
//   - a node this instance owns turns suspect after SuspectAfter of silence
//     and expires after MissedBeats × Period;
//   - a node owned by a lost peer expires when it has not re-homed within
//     ReHomeGrace;
//   - the per-app guard refuses to expire more than MaxExpireShare of an
//     app's nodes within GuardWindow (at least one may always expire); the
//     rest stay listed as suspect.
//
// Expiries of owned nodes go to peers at once; expiries of orphans are local
// (every instance decides them alike).
func (s *Server) sweep(now int64) {
	lost := s.peers.lostSnapshot()
	suspectAfter := int64(s.cfg.SuspectAfter)
	offlineAfter := int64(s.cfg.MissedBeats) * int64(s.cfg.Period)
	grace := int64(s.cfg.ReHomeGrace)
	var batch []peerChange
	var cands []expiry
	var empty []*app
	for _, a := range s.appList() {
		cands = cands[:0]
		var suspects []change
		a.mu.Lock()
		if a.freed {
			a.mu.Unlock()
			continue
		}
		// Own nodes: silence → suspect → offline.
		for _, rec := range a.ownLocked() {
			if rec.removed || rec.owner != s.id {
				continue
			}
			silence := now - rec.heard
			if silence <= suspectAfter {
				continue // the common case: no hashing, no allocation
			}
			if _, pending := a.pending[rec.node.ID]; pending {
				continue
			}
			switch {
			case silence > offlineAfter:
				cands = append(cands, expiry{rec, silence, true})
			case rec.node.State == discovery.StateReady:
				ch := changeOf(rec)
				ch.node.State = discovery.StateSuspect
				suspects = append(suspects, ch)
			}
		}
		// Nodes of lost peers: expire those that did not re-home in time.
		if len(lost) > 0 {
			for _, rec := range a.recs {
				if rec.removed || rec.owner == s.id {
					continue
				}
				since, isLost := lost[rec.owner]
				if !isLost {
					continue
				}
				if since < rec.heard {
					since = rec.heard
				}
				if now-since > grace {
					cands = append(cands, expiry{rec, now - since, false})
				}
			}
		}
		a.commitLocked(suspects, now)
		expired := s.guardLocked(a, cands, now)
		a.commitLocked(expired, now)
		a.expireTombstonesLocked(now, s.cfg.TombstoneTTL)
		s.cleanSubsLocked(a, now)
		if a.emptyLocked() {
			empty = append(empty, a)
		}
		a.mu.Unlock()
		for _, ch := range suspects {
			batch = append(batch, peerChange{app: a.name, change: ch})
		}
		for _, ch := range expired {
			if ch.owner == s.id {
				batch = append(batch, peerChange{app: a.name, change: ch})
			}
		}
	}
	s.peers.broadcast(batch)
	s.freeEmpty(empty)
}

// guardLocked returns the expiries the per-app guard allows, longest silent
// first, and records them.
func (s *Server) guardLocked(a *app, cands []expiry, now int64) []change {
	if len(cands) == 0 {
		return nil
	}
	window := int64(s.cfg.GuardWindow)
	keep := a.expired[:0]
	for _, t := range a.expired {
		if now-t < window {
			keep = append(keep, t)
		}
	}
	a.expired = keep
	allowed := int(math.Floor(s.cfg.MaxExpireShare * float64(a.live+len(a.expired))))
	allowed = max(allowed, 1) - len(a.expired)
	if allowed < len(cands) {
		s.stats.guardHeld.Add(uint64(len(cands) - max(allowed, 0)))
		sort.Slice(cands, func(i, j int) bool { return cands[i].silence > cands[j].silence })
		if allowed <= 0 {
			cands = cands[:0]
		} else {
			cands = cands[:allowed]
		}
		s.log.Warn("expiry guard holding nodes", "app", a.name, "allowed", max(allowed, 0))
	}
	out := make([]change, 0, len(cands))
	for _, c := range cands {
		ch := changeOf(c.rec)
		ch.removed = true
		ch.node.State = discovery.StateOffline
		out = append(out, ch)
		a.expired = append(a.expired, now)
	}
	s.stats.expired.Add(uint64(len(out)))
	return out
}

// changeOf returns a change that rewrites rec as it is (keeping owner,
// sequence and heard time), for the caller to modify.
func changeOf(rec *record) change {
	return change{node: rec.node, owner: rec.owner, inc: rec.inc, seq: rec.seq, heard: rec.heard, auth: rec.auth}
}

// cleanSubsLocked forgets subscribers that stopped watching.
func (s *Server) cleanSubsLocked(a *app, now int64) {
	ttl := int64(s.cfg.SubscriberTTL)
	for id, sb := range a.subs {
		if sb.watching == 0 && now-sb.lastSeen > ttl {
			delete(a.subs, id)
		}
	}
}
