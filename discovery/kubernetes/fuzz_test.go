package kubernetes

import (
	"encoding/json"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// FuzzDecodePoolSpec: any InferencePool spec a cluster may hold decodes to
// a spec or an error, never a panic.
func FuzzDecodePoolSpec(f *testing.F) {
	for _, seed := range []string{
		`{"selector":{"matchLabels":{"app":"llama"}},"targetPorts":[{"number":8000}],"appProtocol":"http"}`,
		`{"selector":{"matchLabels":{"app":"llama"}},"targetPorts":[{"number":8000},{"number":8001}],"endpointPickerRef":{"name":"epp","port":{"number":9002},"failureMode":"FailOpen"}}`,
		`{"selector":{},"targetPorts":"8000"}`,
		`{"extensionRef":{"name":"x"}}`,
		`{"targetPorts":[{"number":1e99}]}`,
		`{}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 1<<16 {
			return
		}
		var spec map[string]any
		if json.Unmarshal(b, &spec) != nil {
			return
		}
		u := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "p", "namespace": "ml"}, "spec": spec}}
		got, err := decodePoolSpec(u)
		if err == nil && len(got.TargetPorts) > 0 && got.TargetPorts[0].Number == 0 && spec["targetPorts"] == nil {
			t.Fatalf("ports from nowhere: %+v", got)
		}
	})
}
