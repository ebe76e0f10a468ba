package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// logFlags are --log-level and --log-format, which every subcommand that
// logs has. Its startup, reload and shutdown lines go through the logger
// they make, like everything else it logs.
//
//	lf := addLogFlags(fs)
//	if err := parseFlags(fs, args); err != nil { return err }
//	log, err := lf.logger(stderr)
//	if err != nil { return err }
type logFlags struct {
	level, format string
}

// addLogFlags defines --log-level and --log-format on fs.
func addLogFlags(fs *flag.FlagSet) *logFlags {
	l := &logFlags{}
	fs.StringVar(&l.level, "log-level", "info", "least severe level logged: debug, info, warn or error")
	fs.StringVar(&l.format, "log-format", "text", "text (key=value pairs) or json (one JSON object per line)")
	return l
}

// logger returns a logger writing to w at the flags' level in the flags'
// format. A level or format it does not know is a usage error naming the
// flag.
func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(l.level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error: %w", l.level, errUsage)
	}
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: durationString}
	switch strings.ToLower(l.format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json: %w", l.format, errUsage)
}

// durationString writes a duration as people do (1.5s, 250ms) in both
// formats: the JSON handler would write nanoseconds.
func durationString(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		a.Value = slog.StringValue(a.Value.Duration().String())
	}
	return a
}

// logWriter is an io.Writer that logs each line written to it at info
// level, for packages that report progress to an io.Writer (bench,
// demo): their lines then come out in the chosen format.
type logWriter struct {
	log *slog.Logger
	mu  sync.Mutex
	buf []byte
}

func newLogWriter(log *slog.Logger) *logWriter { return &logWriter{log: log} }

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		if line := strings.TrimSpace(string(w.buf[:i])); line != "" {
			w.log.Info(line)
		}
		w.buf = w.buf[i+1:]
	}
}
