// Package prefix turns the prompt of an inference request body into prefix
// points: hashes that identify the request's first N characters, for
// prefix-cache affinity (balancer.Affinity, issue 14).
//
// # What is hashed
//
// The prompt is read as a stream of text without decoding the body into Go
// values: an OpenAI chat body's "messages" in order (each message's role,
// then its content: a string, or the "text" of its {"type":"text"} parts),
// else a completion body's "prompt" (a string, or the first string of an
// array), else a KServe v2 body's "inputs" of datatype BYTES (their string
// data, nested arrays flattened). Strings are unescaped with encoding/json's
// rules (invalid UTF-8 and lone surrogates become U+FFFD), keys are matched
// exactly and a repeated key keeps its last value, as a Python server reads
// the body. The fuzz test checks every point against a reference built on
// encoding/json.
//
// The stream is cut into blocks of BlockSize (64) bytes, chained: a block's
// hash covers its bytes and the hash before it, so one hash names the whole
// prefix up to that block, as engines' prefix caches (vLLM's block hashes,
// SGLang's radix tree) name theirs. 64 characters are about 16 tokens at
// the usual ~4 characters a token, which is vLLM's default KV block, and
// are what GIE's prefix scorer hashes (16 tokens × 4 characters), so
// Switchyard's and GIE's matching see the same granularity.
//
// Not every block becomes a point: the first 8 do, then 4 per octave (8,
// 10, 12, 14, 16, 20, 24, 28, 32, 40, ...): a prompt of n blocks gives
// about 8 + 4·log2(n/8) block points, so an index stays small however long
// conversations grow and a lookup is a binary search over a few dozen
// points. Every message end is a point too (the chain so far plus the
// unfinished block): the previous turn of a conversation ends exactly at a
// message end of the next one, which block points alone would miss by up to
// an eighth of the prompt. When the caller's slices are full, the points
// after the first 8 are thinned by half (every other one dropped), so the
// points always span the whole prompt.
//
// # Contract
//
// Scan reads one body, writes into slices the caller provides, allocates
// nothing and never panics; a body that is not one well-formed JSON object
// (encoding/json's rules, nesting depth at most 10,000) gets ErrMalformed.
// Everything in the package is safe for concurrent use: it has no state.
package prefix
