package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/switchyard-dev/switchyard/internal/yamlerr"
)

// The decoder's messages speak Go; internal/yamlerr rewrites them for
// the person who wrote the file (ParseConfig). Validation errors that
// start with a field path gain the path's YAML line (locate), and so do
// errors found after loading that name a field (Config.AtLine).

// locate gives a validation error that starts with a field path (e.g.
// "routes[1].name \"r\": duplicate route name") that field's YAML line.
func locate(data []byte, err error) error {
	msg, ok := strings.CutPrefix(err.Error(), ErrConfig.Error()+": ")
	if !ok {
		return err
	}
	end := strings.IndexAny(msg, " :")
	if end <= 0 {
		return err
	}
	if line, ok := yamlerr.Lines(data)[msg[:end]]; ok {
		return fmt.Errorf("%w: line %d: %s", ErrConfig, line, msg)
	}
	return err
}

// AtLine gives an error found after loading (a TLS key pair, a token
// file or a shadow log directory that New could not use) the YAML line
// of the first field path its message names, e.g. "line 4: tls:
// listen.tls_cert: open cert.pem: no such file or directory"; a route's
// part that names its route (`route "r": tls.ca_file: ...`) gets the
// line of routes[i].tls.ca_file. The
// message loses its leading "gateway: " (or "gateway: config: "), which
// the line now replaces; it still wraps err. An error that names no field of the file, or a config
// that LoadConfig did not read, is returned as it is.
func (c *Config) AtLine(err error) error {
	if err == nil || c.lines == nil {
		return err
	}
	msg := err.Error()
	words := strings.FieldsFunc(msg, func(r rune) bool { return r == ' ' || r == ':' || r == '"' || r == ',' })
	// A route's parts name the route and their field within it:
	// `route "r": tls.ca_file: ...` is routes[i].tls.ca_file.
	if m := reRouteField.FindStringSubmatch(msg); m != nil {
		for i := range c.Routes {
			if c.Routes[i].Name == m[1] {
				words = append([]string{fmt.Sprintf("routes[%d].%s", i, m[2])}, words...)
				break
			}
		}
	}
	for _, word := range words {
		if !strings.ContainsAny(word, ".[") {
			continue // a plain word ("routes") is no field path
		}
		if line, ok := c.lines[word]; ok {
			msg = strings.TrimPrefix(strings.TrimPrefix(msg, ErrConfig.Error()+": "), "gateway: ")
			return &lineError{line: line, msg: msg, err: err}
		}
	}
	return err
}

var reRouteField = regexp.MustCompile(`route "([^"]*)": ([a-z_.]+[a-z_])`)

// lineError is an error with the YAML line it is about.
type lineError struct {
	line int
	msg  string
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }
func (e *lineError) Unwrap() error { return e.err }
