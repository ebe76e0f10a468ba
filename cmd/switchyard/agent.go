package main

import (
	"context"
	"fmt"
	"io"
)

func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("agent", "agent [flags]", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return fmt.Errorf("the agent command is %w", errNotBuilt)
}
