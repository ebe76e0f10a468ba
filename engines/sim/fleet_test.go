package sim

import (
	"regexp"
	"strings"
	"testing"
)

// TestFleetErrorsSpeakYAML: a fleet file's errors name the line and the
// field, say what the value should look like, and show neither Go type
// names nor "sim:" twice.
func TestFleetErrorsSpeakYAML(t *testing.T) {
	goWords := regexp.MustCompile(`\bsim\.[A-Z]\w*|time\.Duration|\[\]|!!(int|str|seq|map)|float64|unmarshal|not found in type`)
	for _, tc := range []struct{ name, yaml, want string }{
		{"misspelt field", "nodes:\n  - {id: a, profil: h100}\n", `sim: fleet: line 2: nodes[0]: unknown field "profil" (known: count, `},
		{"word for a number", "nodes:\n  - {id: a, slowdown: lots}\n", `sim: fleet: line 2: nodes[0].slowdown: want a number, got "lots"`},
		{"bare duration", "nodes:\n  - {id: a, startup_delay: 5}\n", "sim: fleet: line 2: nodes[0].startup_delay: 5 is not a duration: give it a unit, e.g. 5s"},
		{"scalar for the list", "nodes: 3\n", `sim: fleet: line 1: nodes: want a list, e.g. [3], got "3"`},
		{"empty file", "", "sim: fleet: empty file"},
		{"unknown profile", "nodes:\n  - {id: a, profile: tpu}\n", `sim: fleet: nodes[0]: unknown profile "tpu" (known: 910b, a10, cpu, h100)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc, err := ParseFleet([]byte(tc.yaml))
			if err == nil {
				_, err = fc.Configs()
			}
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q\nwant it to contain %q", msg, tc.want)
			}
			if m := goWords.FindString(msg); m != "" {
				t.Errorf("error %q shows Go's words: %q", msg, m)
			}
			if strings.Count(msg, "sim:") != 1 {
				t.Errorf("error %q: want the prefix sim: once", msg)
			}
		})
	}
}
