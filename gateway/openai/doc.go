// Package openai is the part of the OpenAI wire format the gateway reads
// and writes on the request path (issue 15): the usage and finish reasons
// of a buffered answer (ParseResponse), the relay of a streamed answer
// (Stream, Reader: whole events passed on, the usage event the gateway
// asked for removed, usage, finish reasons and token timing read on the
// way), and the request rewrites (RewriteRequest: a model alias's
// upstream name, stream_options.include_usage).
//
// Everything works on byte slices without decoding and without
// allocating once warm (alloc_test.go), with encoding/json's rules for
// what is well-formed JSON and Python's json rules for what a repeated
// key means (the last one wins), so that what the gateway reads is what
// the engine (vLLM, SGLang: pydantic) reads. A value that only looks like
// usage (inside a string, nested below the top level) does not count.
// The parsers are fuzzed against encoding/json.
//
// It owns no state between requests and imports nothing of the gateway:
// the forwarding core calls it, the telemetry records what it reports. It
// never logs and never holds a request or answer after a call returns
// (Stream keeps at most one unfinished event, a copy).
//
// Engine behaviour it follows, from vLLM's
// vllm/entrypoints/openai/chat_completion/serving.py
// (chat_completion_stream_generator; vllm-project/vllm, file commit
// 006c49d485f9ca479bf4989cbb694d0ac02f44b5): chunks are "data: {json}\n\n"
// written with exclude_unset (no "usage" key unless asked); the first
// chunk per choice carries the role and "content": ""; with
// stream_options.include_usage the last chunk before "data: [DONE]" has
// "choices": [] and the usage (written with exclude_none); with
// continuous_usage_stats every chunk carries the running usage; an error
// is one "data: {"error": ...}" event followed by [DONE]. OpenAI sends
// "usage": null on the other chunks; null counts as absent.
//
// Functions are safe for concurrent use; a Stream or Reader is not.
package openai
