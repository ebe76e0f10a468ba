package main

import (
	"context"
	"fmt"
	"io"
)

func runAgent(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "probe" {
		return runAgentProbe(ctx, args[1:], stdout, stderr)
	}
	fs := newFlagSet("agent", "agent [run|drain|probe] [flags]", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return fmt.Errorf("the agent command is %w", errNotBuilt)
}
