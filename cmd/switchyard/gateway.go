package main

import (
	"context"
	"fmt"
	"io"
)

func runGateway(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gateway", "gateway [flags]", stderr)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	return fmt.Errorf("the gateway command is %w", errNotBuilt)
}
