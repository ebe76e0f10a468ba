package main

import (
	"context"
	"fmt"
	"io"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", "demo [flags]", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return fmt.Errorf("the demo command is %w", errNotBuilt)
}
