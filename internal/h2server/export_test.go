package h2server

import "time"

// SetGoAwayLinger sets how long s reads a connection after its GOAWAY.
func SetGoAwayLinger(s *Server, d time.Duration) { s.goAwayLinger = d }
