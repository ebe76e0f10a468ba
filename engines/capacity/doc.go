// Package capacity holds the card performance coefficient table behind
// the capacity term of the dynamic weight: capacity = cards × coefficient
// for accelerators, CPU cores × the cpu_core coefficient otherwise.
//
// The table is YAML (coefficients.yaml, embedded; see it for the basis of
// every number: dense FP16/BF16 TFLOPS relative to an A100 SXM4) and can
// be overridden by a user file whose entries take precedence. A model no
// entry matches gets the table's default coefficient and a warning the
// caller should log, never 0.
//
// A Table is immutable after Parse/Load and safe for concurrent use.
package capacity
