package main

import (
	"context"
	"fmt"
	"io"
)

func runSim(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sim", "sim [flags]", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return fmt.Errorf("the sim command is %w", errNotBuilt)
}
