package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestHelpShowsNoSecret: flags that default from $SWITCHYARD_TOKEN and
// $SWITCHYARD_PEER_TOKEN never print them, and the help says what the
// shared token means.
func TestHelpShowsNoSecret(t *testing.T) {
	t.Setenv("SWITCHYARD_TOKEN", "tok-in-env-7f3a")
	t.Setenv("SWITCHYARD_PEER_TOKEN", "peer-in-env-19c2")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, cmd := range []string{"resource", "agent"} {
		var out bytes.Buffer
		if code := run(ctx, []string{cmd, "-h"}, &out, &out); code != 0 {
			t.Fatalf("%s -h: exit %d\n%s", cmd, code, out.String())
		}
		help := out.String()
		if strings.Contains(help, "tok-in-env") || strings.Contains(help, "peer-in-env") {
			t.Fatalf("%s -h prints a secret:\n%s", cmd, help)
		}
		if !strings.Contains(help, "$SWITCHYARD_TOKEN") {
			t.Fatalf("%s -h does not say where the token comes from:\n%s", cmd, help)
		}
	}
	var out bytes.Buffer
	run(ctx, []string{"resource", "-h"}, &out, &out)
	if !strings.Contains(out.String(), "FULL access") || !strings.Contains(out.String(), "-credentials") {
		t.Fatalf("resource -h does not explain the shared token and the credentials file:\n%s", out.String())
	}
}
