package openai

import "bytes"

// Endpoint is the OpenAI API a request path names.
type Endpoint uint8

// The endpoints whose answers carry usage.
const (
	EndpointOther       Endpoint = iota
	EndpointChat                 // .../chat/completions
	EndpointCompletions          // .../completions
	EndpointEmbeddings           // .../embeddings
)

// EndpointOf tells the endpoint from a request path (without its query)
// by its last segments, so that a prefixed path (a Ray Serve route prefix,
// /openai/v1/...) is recognised too.
func EndpointOf(path []byte) Endpoint {
	switch {
	case bytes.HasSuffix(path, []byte("/chat/completions")):
		return EndpointChat
	case bytes.HasSuffix(path, []byte("/completions")):
		return EndpointCompletions
	case bytes.HasSuffix(path, []byte("/embeddings")):
		return EndpointEmbeddings
	}
	return EndpointOther
}
