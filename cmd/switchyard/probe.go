package main

import (
	"context"
	"fmt"
	"io"
)

// runAgentProbe implements `switchyard agent probe`. Owned by the engines work.
func runAgentProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("agent probe", "agent probe [flags]", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return fmt.Errorf("agent probe is %w", errNotBuilt)
}
