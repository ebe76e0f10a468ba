package sim

import (
	"context"
	"errors"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/switchyard-dev/switchyard/engines/kserve"
)

// newGRPCServer builds the KServe v2 GRPCInferenceService on raw bytes.
func (n *Node) newGRPCServer() *grpc.Server {
	s := grpc.NewServer(grpc.ForceServerCodecV2(kserve.Codec{}))
	unary := func(f func(ctx context.Context, req []byte) ([]byte, error)) grpc.MethodHandler {
		return func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			n.wg.Add(1)
			defer n.wg.Done()
			_ = grpc.SetHeader(ctx, metadata.Pairs(strings.ToLower(NodeHeader), n.id))
			var b []byte
			if err := dec(&b); err != nil {
				return nil, err
			}
			if n.Mode() == ModeHang {
				n.hang()
				if n.Mode() == ModeHang || isClosed(n.closed) {
					return nil, status.Error(codes.Unavailable, "sim: hung")
				}
			}
			out, err := f(ctx, b)
			if err != nil {
				return nil, err
			}
			return out, nil
		}
	}
	desc := grpc.ServiceDesc{
		ServiceName: kserve.Service,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: "ServerLive", Handler: unary(func(context.Context, []byte) ([]byte, error) { return kserve.MarshalBool(true), nil })},
			{MethodName: "ServerReady", Handler: unary(func(context.Context, []byte) ([]byte, error) {
				return kserve.MarshalBool(n.ready() && !n.draining.Load()), nil
			})},
			{MethodName: "ModelReady", Handler: unary(func(_ context.Context, b []byte) ([]byte, error) {
				name, _, err := kserve.ParseModelReadyRequest(b)
				if err != nil {
					return nil, status.Error(codes.InvalidArgument, err.Error())
				}
				return kserve.MarshalBool(name == n.cfg.Model && n.ready() && !n.draining.Load()), nil
			})},
			{MethodName: "ServerMetadata", Handler: unary(func(context.Context, []byte) ([]byte, error) {
				return kserve.MarshalServerMetadata("switchyard-sim", "1", nil), nil
			})},
			{MethodName: "ModelInfer", Handler: unary(func(_ context.Context, b []byte) ([]byte, error) {
				req, err := kserve.ParseInferRequest(b)
				if err != nil {
					return nil, status.Error(codes.InvalidArgument, err.Error())
				}
				resp, err := n.grpcInfer(req, nil)
				if err != nil {
					return nil, err
				}
				return resp.Marshal(), nil
			})},
		},
		Streams: []grpc.StreamDesc{{
			StreamName:    "ModelStreamInfer",
			ServerStreams: true,
			ClientStreams: true,
			Handler: func(_ any, ss grpc.ServerStream) error {
				n.wg.Add(1)
				defer n.wg.Done()
				_ = ss.SetHeader(metadata.Pairs(strings.ToLower(NodeHeader), n.id))
				for {
					var b []byte
					if err := ss.RecvMsg(&b); err != nil {
						if errors.Is(err, context.Canceled) || status.Code(err) == codes.Canceled {
							return nil
						}
						return nil // io.EOF: the client closed its side
					}
					if n.Mode() == ModeHang {
						n.hang()
						if n.Mode() == ModeHang || isClosed(n.closed) {
							return status.Error(codes.Unavailable, "sim: hung")
						}
					}
					req, err := kserve.ParseInferRequest(b)
					if err != nil {
						if err := ss.SendMsg(kserve.MarshalStreamResponse(err.Error(), nil)); err != nil {
							return err
						}
						continue
					}
					// With parameter stream=true, one response per token
					// (decoupled models); else one response per request.
					var each func(tok string) error
					if p, ok := req.Parameters["stream"]; ok && p.Bool != nil && *p.Bool {
						each = func(tok string) error {
							r := kserve.InferResponse{ModelName: n.cfg.Model, ModelVersion: "1", ID: req.ID,
								Outputs: []kserve.Tensor{{Name: "text_output", Datatype: "BYTES", Shape: []int64{1}, BytesContents: [][]byte{[]byte(tok)}}}}
							return ss.SendMsg(kserve.MarshalStreamResponse("", &r))
						}
					}
					resp, err := n.grpcInfer(req, each)
					if err != nil {
						if ss.Context().Err() != nil {
							return nil
						}
						if err := ss.SendMsg(kserve.MarshalStreamResponse(status.Convert(err).Message(), nil)); err != nil {
							return err
						}
						continue
					}
					if each != nil {
						final := true
						resp.Parameters = map[string]kserve.Param{"triton_final_response": {Bool: &final}}
						resp.Outputs = nil
					}
					if err := ss.SendMsg(kserve.MarshalStreamResponse("", &resp)); err != nil {
						return err
					}
				}
			},
		}},
		Metadata: "grpc_service.proto",
	}
	s.RegisterService(&desc, n)
	return s
}

// grpcInfer runs one ModelInferRequest; each, when set, gets every token.
func (n *Node) grpcInfer(req kserve.InferRequest, each func(string) error) (kserve.InferResponse, error) {
	if req.ModelName != n.cfg.Model {
		return kserve.InferResponse{}, status.Errorf(codes.NotFound, "Request for unknown model: '%s' is not found", req.ModelName)
	}
	if n.failNow() {
		return kserve.InferResponse{}, status.Error(codes.Internal, "simulated engine failure")
	}
	tokens := n.prof.MaxTokens
	if p, ok := req.Parameters["max_tokens"]; ok {
		if v, ok := p.Int(); ok && v >= 1 && v <= 1<<20 {
			tokens = int(v)
		}
	}
	var text promptText
	for _, in := range req.Inputs {
		for _, b := range in.BytesContents {
			text.Write(b)
		}
	}
	if err := n.admit(); err != nil {
		var r *errRefused
		if errors.As(err, &r) && r.status == 429 {
			return kserve.InferResponse{}, status.Error(codes.ResourceExhausted, r.msg)
		}
		return kserve.InferResponse{}, status.Error(codes.Unavailable, err.Error())
	}
	defer n.release()
	pf := n.plan(text.String())
	var sb strings.Builder
	ok := n.generate(pf, tokens, func(i int) bool {
		sb.WriteString(token(i))
		return each == nil || each(token(i)) == nil
	})
	if !ok {
		return kserve.InferResponse{}, status.Error(codes.Unavailable, "sim: node stopped or client gone")
	}
	n.served.Add(1)
	return kserve.InferResponse{ModelName: n.cfg.Model, ModelVersion: "1", ID: req.ID,
		Outputs: []kserve.Tensor{{Name: "text_output", Datatype: "BYTES", Shape: []int64{1}, BytesContents: [][]byte{[]byte(sb.String())}}}}, nil
}
