package main

import (
	"context"
	"fmt"
	"io"
)

func runResource(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("resource", "resource [flags]", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return fmt.Errorf("the resource command is %w", errNotBuilt)
}
