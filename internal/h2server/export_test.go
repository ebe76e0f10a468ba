package h2server

import "time"

// SetGoAwayLinger sets how long s reads a connection after its GOAWAY.
func SetGoAwayLinger(s *Server, d time.Duration) { s.goAwayLinger = d }

// SetAfterAnswer makes s run f after each answer's last frame is written
// and before its stream is released.
func SetAfterAnswer(s *Server, f func()) { s.afterAnswer = f }

// RetireWorkers runs one of s's periodic retirements of idle workers and
// returns how many it ended.
func RetireWorkers(s *Server) int { return s.workers.retire() }
