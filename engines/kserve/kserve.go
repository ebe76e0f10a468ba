package kserve

import (
	"fmt"
	"math"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/switchyard-dev/switchyard/engines"
)

// Service and method names.
const (
	Service          = "inference.GRPCInferenceService"
	ServerLive       = "/" + Service + "/ServerLive"
	ServerReady      = "/" + Service + "/ServerReady"
	ModelReady       = "/" + Service + "/ModelReady"
	ServerMetadata   = "/" + Service + "/ServerMetadata"
	ModelInfer       = "/" + Service + "/ModelInfer"
	ModelStreamInfer = "/" + Service + "/ModelStreamInfer"
)

// Codec is a gRPC CodecV2 that passes messages through as bytes: Marshal
// accepts []byte or *[]byte, Unmarshal needs a *[]byte. Its name is
// "proto" so it interoperates with ordinary protobuf peers.
type Codec struct{}

var _ encoding.CodecV2 = Codec{}

// Name implements encoding.CodecV2.
func (Codec) Name() string { return "proto" }

// Marshal implements encoding.CodecV2.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	switch b := v.(type) {
	case []byte:
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	case *[]byte:
		return mem.BufferSlice{mem.SliceBuffer(*b)}, nil
	}
	return nil, fmt.Errorf("kserve: codec: cannot marshal %T (want []byte)", v)
}

// Unmarshal implements encoding.CodecV2.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	p, ok := v.(*[]byte)
	if !ok {
		return fmt.Errorf("kserve: codec: cannot unmarshal into %T (want *[]byte)", v)
	}
	*p = data.Materialize()
	return nil
}

// Param is an InferParameter (a oneof); exactly one field is set.
type Param struct {
	Bool   *bool
	Int64  *int64
	String *string
	Double *float64
	Uint64 *uint64
}

// Int returns the parameter as an integer when it is numeric.
func (p Param) Int() (int64, bool) {
	switch {
	case p.Int64 != nil:
		return *p.Int64, true
	case p.Uint64 != nil && *p.Uint64 <= math.MaxInt64:
		return int64(*p.Uint64), true
	case p.Double != nil && *p.Double == math.Trunc(*p.Double) && math.Abs(*p.Double) < 1<<53:
		return int64(*p.Double), true
	}
	return 0, false
}

// Tensor is an input or output tensor (InferInputTensor /
// InferOutputTensor share field numbers 1..5).
type Tensor struct {
	Name       string
	Datatype   string
	Shape      []int64
	Parameters map[string]Param
	// Contents holds typed contents; only bytes/int64/fp32 are kept.
	BytesContents [][]byte
	Int64Contents []int64
	FP32Contents  []float32
}

// InferRequest is ModelInferRequest.
type InferRequest struct {
	ModelName    string
	ModelVersion string
	ID           string
	Parameters   map[string]Param
	Inputs       []Tensor
	// Outputs are the requested output names.
	Outputs          []string
	RawInputContents [][]byte
}

// InferResponse is ModelInferResponse.
type InferResponse struct {
	ModelName         string
	ModelVersion      string
	ID                string
	Parameters        map[string]Param
	Outputs           []Tensor
	RawOutputContents [][]byte
}

// --- encoding ---

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendMsg(b []byte, num protowire.Number, m []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

func appendParams(b []byte, num protowire.Number, ps map[string]Param) []byte {
	for k, p := range ps {
		var v []byte
		switch {
		case p.Bool != nil:
			v = protowire.AppendTag(v, 1, protowire.VarintType)
			v = protowire.AppendVarint(v, protowire.EncodeBool(*p.Bool))
		case p.Int64 != nil:
			v = protowire.AppendTag(v, 2, protowire.VarintType)
			v = protowire.AppendVarint(v, uint64(*p.Int64))
		case p.String != nil:
			v = protowire.AppendTag(v, 3, protowire.BytesType)
			v = protowire.AppendString(v, *p.String)
		case p.Double != nil:
			v = protowire.AppendTag(v, 4, protowire.Fixed64Type)
			v = protowire.AppendFixed64(v, math.Float64bits(*p.Double))
		case p.Uint64 != nil:
			v = protowire.AppendTag(v, 5, protowire.VarintType)
			v = protowire.AppendVarint(v, *p.Uint64)
		}
		var e []byte
		e = appendString(e, 1, k)
		e = appendMsg(e, 2, v)
		b = appendMsg(b, num, e)
	}
	return b
}

func (t Tensor) marshal() []byte {
	var b []byte
	b = appendString(b, 1, t.Name)
	b = appendString(b, 2, t.Datatype)
	if len(t.Shape) > 0 {
		var p []byte
		for _, s := range t.Shape {
			p = protowire.AppendVarint(p, uint64(s))
		}
		b = appendMsg(b, 3, p)
	}
	b = appendParams(b, 4, t.Parameters)
	var c []byte
	if len(t.Int64Contents) > 0 {
		var p []byte
		for _, x := range t.Int64Contents {
			p = protowire.AppendVarint(p, uint64(x))
		}
		c = appendMsg(c, 3, p)
	}
	if len(t.FP32Contents) > 0 {
		var p []byte
		for _, x := range t.FP32Contents {
			p = protowire.AppendFixed32(p, math.Float32bits(x))
		}
		c = appendMsg(c, 6, p)
	}
	for _, x := range t.BytesContents {
		c = protowire.AppendTag(c, 8, protowire.BytesType)
		c = protowire.AppendBytes(c, x)
	}
	if len(c) > 0 {
		b = appendMsg(b, 5, c)
	}
	return b
}

// Marshal encodes a ModelInferRequest.
func (r InferRequest) Marshal() []byte {
	var b []byte
	b = appendString(b, 1, r.ModelName)
	b = appendString(b, 2, r.ModelVersion)
	b = appendString(b, 3, r.ID)
	b = appendParams(b, 4, r.Parameters)
	for _, t := range r.Inputs {
		b = appendMsg(b, 5, t.marshal())
	}
	for _, o := range r.Outputs {
		b = appendMsg(b, 6, appendString(nil, 1, o))
	}
	for _, x := range r.RawInputContents {
		b = protowire.AppendTag(b, 7, protowire.BytesType)
		b = protowire.AppendBytes(b, x)
	}
	return b
}

// Marshal encodes a ModelInferResponse.
func (r InferResponse) Marshal() []byte {
	var b []byte
	b = appendString(b, 1, r.ModelName)
	b = appendString(b, 2, r.ModelVersion)
	b = appendString(b, 3, r.ID)
	b = appendParams(b, 4, r.Parameters)
	for _, t := range r.Outputs {
		b = appendMsg(b, 5, t.marshal())
	}
	for _, x := range r.RawOutputContents {
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		b = protowire.AppendBytes(b, x)
	}
	return b
}

// MarshalStreamResponse encodes a ModelStreamInferResponse
// {error_message = 1, infer_response = 2}.
func MarshalStreamResponse(errMsg string, r *InferResponse) []byte {
	var b []byte
	b = appendString(b, 1, errMsg)
	if r != nil {
		b = appendMsg(b, 2, r.Marshal())
	}
	return b
}

// MarshalBool encodes a message whose only field is "bool x = 1"
// (ServerLiveResponse, ServerReadyResponse, ModelReadyResponse).
func MarshalBool(v bool) []byte {
	if !v {
		return []byte{}
	}
	b := protowire.AppendTag(nil, 1, protowire.VarintType)
	return protowire.AppendVarint(b, 1)
}

// MarshalModelReadyRequest encodes ModelReadyRequest{name=1, version=2}.
func MarshalModelReadyRequest(name, version string) []byte {
	return appendString(appendString(nil, 1, name), 2, version)
}

// MarshalServerMetadata encodes ServerMetadataResponse.
func MarshalServerMetadata(name, version string, extensions []string) []byte {
	b := appendString(appendString(nil, 1, name), 2, version)
	for _, e := range extensions {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendString(b, e)
	}
	return b
}

// --- decoding ---

func malformed(what string, err error) error {
	return fmt.Errorf("kserve: %s: %w: %w", what, engines.ErrMalformed, err)
}

// fields walks a message, calling f for each field; f gets the raw value
// for bytes fields and the varint/fixed value otherwise.
func fields(b []byte, what string, f func(num protowire.Number, typ protowire.Type, v []byte, u uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return malformed(what, protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		var u uint64
		switch typ {
		case protowire.VarintType:
			u, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.Fixed32Type:
			var x uint32
			x, n = protowire.ConsumeFixed32(b)
			u = uint64(x)
		case protowire.Fixed64Type:
			u, n = protowire.ConsumeFixed64(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return malformed(what, fmt.Errorf("field %d: %w", num, protowire.ParseError(n)))
		}
		b = b[n:]
		if err := f(num, typ, v, u); err != nil {
			return err
		}
	}
	return nil
}

func wantBytes(what string, num protowire.Number, typ protowire.Type) error {
	if typ != protowire.BytesType {
		return malformed(what, fmt.Errorf("field %d: wire type %d, want bytes", num, typ))
	}
	return nil
}

func parseParam(b []byte) (Param, error) {
	var p Param
	err := fields(b, "InferParameter", func(num protowire.Number, typ protowire.Type, v []byte, u uint64) error {
		switch num {
		case 1:
			x := protowire.DecodeBool(u)
			p = Param{Bool: &x}
		case 2:
			x := int64(u)
			p = Param{Int64: &x}
		case 3:
			if err := wantBytes("InferParameter", num, typ); err != nil {
				return err
			}
			x := string(v)
			p = Param{String: &x}
		case 4:
			x := math.Float64frombits(u)
			p = Param{Double: &x}
		case 5:
			x := u
			p = Param{Uint64: &x}
		}
		return nil
	})
	return p, err
}

func parseParamEntry(b []byte, dst map[string]Param) error {
	var key string
	var val Param
	err := fields(b, "parameters entry", func(num protowire.Number, typ protowire.Type, v []byte, u uint64) error {
		switch num {
		case 1:
			if err := wantBytes("parameters entry", num, typ); err != nil {
				return err
			}
			key = string(v)
		case 2:
			if err := wantBytes("parameters entry", num, typ); err != nil {
				return err
			}
			p, err := parseParam(v)
			if err != nil {
				return err
			}
			val = p
		}
		return nil
	})
	if err == nil {
		dst[key] = val
	}
	return err
}

func parseTensor(b []byte) (Tensor, error) {
	var t Tensor
	err := fields(b, "tensor", func(num protowire.Number, typ protowire.Type, v []byte, u uint64) error {
		switch num {
		case 1, 2, 4, 5:
			if err := wantBytes("tensor", num, typ); err != nil {
				return err
			}
		}
		switch num {
		case 1:
			t.Name = string(v)
		case 2:
			t.Datatype = string(v)
		case 3:
			if typ == protowire.VarintType {
				t.Shape = append(t.Shape, int64(u))
				return nil
			}
			for len(v) > 0 {
				x, n := protowire.ConsumeVarint(v)
				if n < 0 {
					return malformed("tensor.shape", protowire.ParseError(n))
				}
				t.Shape = append(t.Shape, int64(x))
				v = v[n:]
			}
		case 4:
			if t.Parameters == nil {
				t.Parameters = map[string]Param{}
			}
			return parseParamEntry(v, t.Parameters)
		case 5:
			return fields(v, "tensor.contents", func(num protowire.Number, typ protowire.Type, v []byte, u uint64) error {
				switch num {
				case 8:
					if err := wantBytes("tensor.contents", num, typ); err != nil {
						return err
					}
					t.BytesContents = append(t.BytesContents, append([]byte(nil), v...))
				case 3:
					if typ == protowire.VarintType {
						t.Int64Contents = append(t.Int64Contents, int64(u))
						return nil
					}
					for len(v) > 0 {
						x, n := protowire.ConsumeVarint(v)
						if n < 0 {
							return malformed("tensor.contents.int64", protowire.ParseError(n))
						}
						t.Int64Contents = append(t.Int64Contents, int64(x))
						v = v[n:]
					}
				case 6:
					if typ == protowire.Fixed32Type {
						t.FP32Contents = append(t.FP32Contents, math.Float32frombits(uint32(u)))
						return nil
					}
					for len(v) > 0 {
						x, n := protowire.ConsumeFixed32(v)
						if n < 0 {
							return malformed("tensor.contents.fp32", protowire.ParseError(n))
						}
						t.FP32Contents = append(t.FP32Contents, math.Float32frombits(x))
						v = v[n:]
					}
				}
				return nil
			})
		}
		return nil
	})
	return t, err
}

// ParseInferRequest decodes a ModelInferRequest.
func ParseInferRequest(b []byte) (InferRequest, error) {
	var r InferRequest
	err := fields(b, "ModelInferRequest", func(num protowire.Number, typ protowire.Type, v []byte, u uint64) error {
		if num >= 1 && num <= 7 {
			if err := wantBytes("ModelInferRequest", num, typ); err != nil {
				return err
			}
		}
		switch num {
		case 1:
			r.ModelName = string(v)
		case 2:
			r.ModelVersion = string(v)
		case 3:
			r.ID = string(v)
		case 4:
			if r.Parameters == nil {
				r.Parameters = map[string]Param{}
			}
			return parseParamEntry(v, r.Parameters)
		case 5:
			t, err := parseTensor(v)
			if err != nil {
				return err
			}
			r.Inputs = append(r.Inputs, t)
		case 6:
			t, err := parseTensor(v) // InferRequestedOutputTensor: name = 1
			if err != nil {
				return err
			}
			r.Outputs = append(r.Outputs, t.Name)
		case 7:
			r.RawInputContents = append(r.RawInputContents, append([]byte(nil), v...))
		}
		return nil
	})
	return r, err
}

// ParseInferResponse decodes a ModelInferResponse.
func ParseInferResponse(b []byte) (InferResponse, error) {
	var r InferResponse
	err := fields(b, "ModelInferResponse", func(num protowire.Number, typ protowire.Type, v []byte, u uint64) error {
		if num >= 1 && num <= 6 {
			if err := wantBytes("ModelInferResponse", num, typ); err != nil {
				return err
			}
		}
		switch num {
		case 1:
			r.ModelName = string(v)
		case 2:
			r.ModelVersion = string(v)
		case 3:
			r.ID = string(v)
		case 4:
			if r.Parameters == nil {
				r.Parameters = map[string]Param{}
			}
			return parseParamEntry(v, r.Parameters)
		case 5:
			t, err := parseTensor(v)
			if err != nil {
				return err
			}
			r.Outputs = append(r.Outputs, t)
		case 6:
			r.RawOutputContents = append(r.RawOutputContents, append([]byte(nil), v...))
		}
		return nil
	})
	return r, err
}

// ParseStreamResponse decodes a ModelStreamInferResponse.
func ParseStreamResponse(b []byte) (errMsg string, resp *InferResponse, err error) {
	err = fields(b, "ModelStreamInferResponse", func(num protowire.Number, typ protowire.Type, v []byte, u uint64) error {
		switch num {
		case 1:
			if err := wantBytes("ModelStreamInferResponse", num, typ); err != nil {
				return err
			}
			errMsg = string(v)
		case 2:
			if err := wantBytes("ModelStreamInferResponse", num, typ); err != nil {
				return err
			}
			r, err := ParseInferResponse(v)
			if err != nil {
				return err
			}
			resp = &r
		}
		return nil
	})
	return errMsg, resp, err
}

// ParseBool decodes a message whose field 1 is a bool.
func ParseBool(b []byte) (bool, error) {
	var out bool
	err := fields(b, "bool response", func(num protowire.Number, typ protowire.Type, v []byte, u uint64) error {
		if num == 1 {
			if typ != protowire.VarintType {
				return malformed("bool response", fmt.Errorf("field 1: wire type %d, want varint", typ))
			}
			out = protowire.DecodeBool(u)
		}
		return nil
	})
	return out, err
}

// ParseModelReadyRequest decodes ModelReadyRequest.
func ParseModelReadyRequest(b []byte) (name, version string, err error) {
	err = fields(b, "ModelReadyRequest", func(num protowire.Number, typ protowire.Type, v []byte, u uint64) error {
		if num == 1 || num == 2 {
			if err := wantBytes("ModelReadyRequest", num, typ); err != nil {
				return err
			}
		}
		switch num {
		case 1:
			name = string(v)
		case 2:
			version = string(v)
		}
		return nil
	})
	return name, version, err
}

// PeekModelName returns field 1 (model_name) of a ModelInferRequest or
// ModelReadyRequest without decoding the rest and without allocating
// beyond the returned string. It is what a gateway needs to route.
func PeekModelName(b []byte) (string, error) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", malformed("model_name", protowire.ParseError(n))
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return "", malformed("model_name", protowire.ParseError(n))
			}
			return string(v), nil
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return "", malformed("model_name", protowire.ParseError(n))
		}
		b = b[n:]
	}
	return "", malformed("model_name", fmt.Errorf("field 1 missing"))
}
