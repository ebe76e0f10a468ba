// Package kserve is a small hand-written wire codec for the KServe v2 /
// Open Inference Protocol gRPC service (package inference, service
// GRPCInferenceService, as in Triton's grpc_service.proto). It encodes
// and decodes the few messages Switchyard needs with protowire instead of
// generated code, and provides Codec, a raw-bytes gRPC codec, so servers
// (engines/sim) and proxies can handle messages as []byte.
//
// Field numbers follow triton-inference-server/common
// protobuf/grpc_service.proto. Unknown fields are skipped on decode.
// Decoders never panic; errors wrap engines.ErrMalformed.
//
// Everything here is stateless and safe for concurrent use.
package kserve
