package all

import (
	// The dialects register themselves in package engines; the per-engine
	// packages are imported for callers that expect them initialised.
	_ "github.com/switchyard-dev/switchyard/engines/mindie"
	_ "github.com/switchyard-dev/switchyard/engines/rayserve"
	_ "github.com/switchyard-dev/switchyard/engines/sglang"
	_ "github.com/switchyard-dev/switchyard/engines/tgi"
	_ "github.com/switchyard-dev/switchyard/engines/triton"
	_ "github.com/switchyard-dev/switchyard/engines/vllm"
)
