package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// newFlagSet returns the flag set of `switchyard NAME`. Its usage (-h,
// --help, which asked for it) goes to stdout: the synopsis and every flag
// spelt --flag, never the value of a secret flag. Errors go to stderr.
// Parse it with parseFlags.
func newFlagSet(name, synopsis string, stdout, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("switchyard "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: switchyard %s\n", synopsis)
		printFlags(stdout, fs)
	}
	return fs
}

// parseFlags parses args into fs. Help returns flag.ErrHelp after printing
// the usage; a bad flag or a stray argument (anything after the flags:
// flag parsing stops at the first word that is not a flag, which would
// otherwise drop the flags after it silently) prints one line saying what
// is wrong and returns errUsage.
func parseFlags(fs *flag.FlagSet, args []string) error {
	usage, out := fs.Usage, fs.Output()
	// The flag package prints its own message and the whole usage on an
	// error; print a shorter one, spelt --flag, instead.
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(out)
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage()
		return err
	case err != nil:
		fmt.Fprintf(out, "%s: %s\nRun `%s --help` to see its flags.\n", fs.Name(), doubleDash(err.Error()), fs.Name())
		return errUsage
	case fs.NArg() > 0:
		fmt.Fprintf(out, "%s: unexpected argument %s: flags come as --name value or --name=value, and this command takes no other argument\n",
			fs.Name(), strayArg(fs, args))
		return errUsage
	}
	return nil
}

// doubleDash rewrites the flag package's messages ("flag provided but not
// defined: -x", "invalid value "y" for flag -x: ...") to the --x spelling
// of the help text.
func doubleDash(msg string) string {
	for _, r := range []struct{ from, to string }{
		{"for flag -", "for --"}, {"for -", "for --"}, {": -", ": --"}, {"flag -", "flag --"},
	} {
		if !strings.Contains(msg, r.to) {
			msg = strings.Replace(msg, r.from, r.to, 1)
		}
	}
	return msg
}

// strayArg quotes the first argument left after the flags, unless it may
// be a secret given the wrong way (`--token= SECRET`, which sets an empty
// token and leaves the secret as an argument).
func strayArg(fs *flag.FlagSet, args []string) string {
	stray := fs.Arg(0)
	at := len(args) - fs.NArg()
	if at > 0 {
		prev := strings.TrimLeft(args[at-1], "-")
		name, _, _ := strings.Cut(prev, "=")
		if f := fs.Lookup(name); f != nil {
			if _, secret := f.Value.(*secretFlag); secret {
				return fmt.Sprintf("after --%s (not shown: it may be the secret; write --%s=VALUE or --%s VALUE)", name, name, name)
			}
		}
	}
	return fmt.Sprintf("%q", stray)
}

// printFlags lists fs's flags as the help shows them:
//
//	--name TYPE
//	      usage (default VALUE)
func printFlags(w io.Writer, fs *flag.FlagSet) {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprint(w, "\nFlags:\n")
	fs.VisitAll(func(f *flag.Flag) {
		kind, usage := flag.UnquoteUsage(f)
		if _, secret := f.Value.(*secretFlag); secret || kind == "value" {
			kind = "string" // "value" is the flag package's word for a custom type
		}
		head := "  --" + f.Name
		if kind != "" {
			head += " " + kind
		}
		if def := defaultText(f); def != "" {
			// One word for wrap, so "(default" and its value stay together.
			usage += " (default\x00" + strings.ReplaceAll(def, " ", "\x00") + ")"
		}
		fmt.Fprintln(w, head)
		for _, line := range wrap(usage, 72) {
			fmt.Fprintln(w, "      "+strings.ReplaceAll(line, "\x00", " "))
		}
	})
}

// defaultText returns how the help shows f's default: "" for a zero
// value or a secret (whose usage names its environment variable instead).
func defaultText(f *flag.Flag) string {
	if _, secret := f.Value.(*secretFlag); secret {
		return ""
	}
	switch f.DefValue {
	case "", "0", "false", "0s", "[]", "map[]":
		return ""
	}
	switch fmt.Sprintf("%T", f.Value) {
	case "*flag.stringValue":
		return fmt.Sprintf("%q", f.DefValue)
	case "*flag.durationValue":
		if d, err := time.ParseDuration(f.DefValue); err == nil {
			return shortDuration(d)
		}
	}
	return f.DefValue
}

// shortDuration writes d without zero units: 6m, not 6m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// printSummary prints a command's line of a usage text: its name, then
// its summary wrapped under itself.
//
//	name      summary that goes on
//	          and on
func printSummary(w io.Writer, name, summary string) {
	for i, line := range wrap(summary, 66) {
		if i == 0 {
			fmt.Fprintf(w, "  %-9s %s\n", name, line)
			continue
		}
		fmt.Fprintf(w, "  %-9s %s\n", "", line)
	}
}

// wrap breaks s into lines of at most width bytes, at spaces.
func wrap(s string, width int) []string {
	var lines []string
	var cur strings.Builder
	for _, word := range strings.Fields(s) {
		if cur.Len() > 0 && cur.Len()+1+len(word) > width {
			lines = append(lines, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(word)
	}
	if cur.Len() > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

// secretFlag is a string flag that defaults to an environment variable
// and whose value the help and the error messages never show.
type secretFlag struct {
	value string
	env   string
	set   bool // given on the command line
}

// secretVar defines a secret flag: its value is $env unless the flag is
// given. The usage gets "(default $ENV)" unless it says its default
// itself ("(default $ENV, else ...)").
func secretVar(fs *flag.FlagSet, name, env, usage string) *secretFlag {
	s := &secretFlag{value: os.Getenv(env), env: env}
	if !strings.Contains(usage, "(default $"+env) {
		usage += " (default $" + env + ")"
	}
	fs.Var(s, name, usage)
	return s
}

// secretFileVar registers --NAME (default $ENV, never printed) and
// --NAME-file, a file holding the secret instead (mounted Kubernetes
// Secrets). Resolve gives the secret.
func secretFileVar(fs *flag.FlagSet, name, env, usage string) *secretSource {
	s := &secretSource{name: name}
	s.flag = secretVar(fs, name, env, usage)
	s.file = fs.String(name+"-file", "", "file holding the "+name+" (instead of --"+name+")")
	return s
}

// secretSource is a secret from a flag, its environment variable or a file.
type secretSource struct {
	name string
	flag *secretFlag
	file *string
}

// Resolve returns the secret: the file's content (trimmed) when
// --NAME-file is set, else --NAME or its environment variable.
func (s *secretSource) Resolve() (string, error) {
	if *s.file == "" {
		return s.flag.Value(), nil
	}
	if s.flag.set {
		return "", fmt.Errorf("set --%s or --%s-file, not both: %w", s.name, s.name, errUsage)
	}
	b, err := os.ReadFile(*s.file)
	if err != nil {
		return "", fmt.Errorf("--%s-file: %w", s.name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// String returns "" so that nothing, the flag package included, prints
// the secret.
func (s *secretFlag) String() string { return "" }

// Set takes the flag's value.
func (s *secretFlag) Set(v string) error { s.value, s.set = v, true; return nil }

// Value returns the secret.
func (s *secretFlag) Value() string { return s.value }
