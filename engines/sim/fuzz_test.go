package sim

import (
	"encoding/json"
	"testing"
)

// FuzzPromptCache feeds arbitrary JSON prompts (strings, content parts,
// token ids, garbage) through the sim's prompt rendering and prefix
// cache: never a panic, never more cached tokens than tokens-1, and a
// prompt just inserted hits all its full blocks below the last token.
func FuzzPromptCache(f *testing.F) {
	f.Add([]byte(`"once upon a time there was a prefix cache"`), 4)
	f.Add([]byte(`[{"type":"text","text":"hello"},{"type":"image_url","image_url":{"url":"x"}}]`), 1)
	f.Add([]byte(`[1,2,3,4,5,6,7,8]`), 2)
	f.Add([]byte(`["a","b"]`), 16)
	f.Add([]byte(`{"not":"a prompt"`), 3)
	f.Fuzz(func(t *testing.T, raw []byte, blockTokens int) {
		if len(raw) > 1<<14 || blockTokens < 1 || blockTokens > 64 {
			return
		}
		var p promptText
		p.addMessage("user", json.RawMessage(raw))
		p.addRaw(raw)
		text := p.String()
		c := newPrefixCache(PrefixCacheConfig{Blocks: 8, BlockTokens: blockTokens})
		if got := c.lookup(text); got != 0 {
			t.Fatalf("cold cache hit %d", got)
		}
		c.insert(text)
		tokens := tokenCount(text)
		got := c.lookup(text)
		if got < 0 || (tokens > 0 && got > tokens-1) || got%blockTokens != 0 {
			t.Fatalf("%d cached of %d tokens (block %d)", got, tokens, blockTokens)
		}
		if want := min(len(text), max(tokens-1, 0)*CharsPerToken) / (blockTokens * CharsPerToken) * blockTokens; got != min(want, 8*blockTokens) {
			t.Fatalf("%d cached, want %d (text %d bytes, block %d tokens)", got, want, len(text), blockTokens)
		}
		if c.len() > 8 {
			t.Fatalf("cache over capacity: %d", c.len())
		}
	})
}
