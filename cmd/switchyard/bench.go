package main

import (
	"context"
	"fmt"
	"io"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("bench", "bench [flags]", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return fmt.Errorf("the bench command is %w", errNotBuilt)
}
