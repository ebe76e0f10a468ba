package sim

import (
	"container/list"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
)

// CharsPerToken is the sim's tokenizer rule: a prompt of B bytes of UTF-8
// text is ceil(B/4) tokens (the usual "about four characters per token"
// of English BPE vocabularies). Usage counts, the prefix cache and the
// prefill time all use it.
const CharsPerToken = 4

// tokenCount is the number of tokens in text under the CharsPerToken rule.
func tokenCount(text string) int {
	return (len(text) + CharsPerToken - 1) / CharsPerToken
}

// PrefixCacheConfig models automatic prefix caching (vLLM APC, SGLang
// RadixAttention): KV blocks of BlockTokens tokens, identified by a hash
// chained over the prompt text, kept in an LRU of Blocks blocks per node.
// A request's prefill skips the blocks found in the cache, so its prefill
// time is Profile.Prefill + Profile.PrefillPerToken × uncached tokens.
type PrefixCacheConfig struct {
	// Blocks is the cache capacity in blocks; 0 disables the cache
	// (default 0).
	Blocks int `yaml:"blocks" json:"blocks"`
	// BlockTokens is the block size in tokens (default 16, vLLM's
	// default --block-size), i.e. BlockTokens × CharsPerToken bytes of
	// prompt text.
	BlockTokens int `yaml:"block_tokens" json:"block_tokens"`
}

// Enabled reports whether the cache is on.
func (c PrefixCacheConfig) Enabled() bool { return c.Blocks > 0 }

// prefixCache is an LRU of block hashes. It is safe for concurrent use.
type prefixCache struct {
	blockBytes int
	capacity   int

	mu      sync.Mutex
	entries map[uint64]*list.Element // guarded by mu
	lru     *list.List               // guarded by mu; front = most recent
}

func newPrefixCache(c PrefixCacheConfig) *prefixCache {
	if !c.Enabled() {
		return nil
	}
	return &prefixCache{blockBytes: c.BlockTokens * CharsPerToken, capacity: c.Blocks,
		entries: make(map[uint64]*list.Element, c.Blocks), lru: list.New()}
}

// blockHashes returns the chained hashes of text's full blocks; only the
// first limit bytes count (a block must lie entirely within them).
func (c *prefixCache) blockHashes(text string, limit int) []uint64 {
	n := min(len(text), limit) / c.blockBytes
	out := make([]uint64, 0, n)
	var prev [8]byte
	d := xxhash.New()
	for i := 0; i < n; i++ {
		d.Reset()
		_, _ = d.Write(prev[:])
		_, _ = d.WriteString(text[i*c.blockBytes : (i+1)*c.blockBytes])
		h := d.Sum64()
		binary.LittleEndian.PutUint64(prev[:], h)
		out = append(out, h)
	}
	return out
}

// lookup returns how many tokens of the prompt text are cached: the
// longest run of leading full blocks present. Like vLLM, at least the
// prompt's last token is always computed (its logits are needed), so only
// blocks within the first tokens-1 tokens can hit.
func (c *prefixCache) lookup(text string) int {
	tokens := tokenCount(text)
	hs := c.blockHashes(text, (tokens-1)*CharsPerToken)
	c.mu.Lock()
	defer c.mu.Unlock()
	hit := 0
	for _, h := range hs {
		if _, ok := c.entries[h]; !ok {
			break
		}
		hit++
	}
	return hit * c.blockBytes / CharsPerToken
}

// insert caches every full block of text: computed KV stays cached after
// the request, and the least recently used blocks beyond capacity are
// evicted. As vLLM frees a request's blocks tail first, a prompt's tail
// blocks are the first of its blocks to go (its head, shared by more
// requests, stays longest).
func (c *prefixCache) insert(text string) {
	hs := c.blockHashes(text, len(text))
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(hs) - 1; i >= 0; i-- {
		h := hs[i]
		if e, ok := c.entries[h]; ok {
			c.lru.MoveToFront(e)
			continue
		}
		c.entries[h] = c.lru.PushFront(h)
		for c.lru.Len() > c.capacity {
			old := c.lru.Back()
			c.lru.Remove(old)
			delete(c.entries, old.Value.(uint64))
		}
	}
}

// len is the number of cached blocks.
func (c *prefixCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// promptText renders a request's prompt as the text the sim tokenises and
// caches. Chat messages become "role\ncontent\n" in order, so every turn
// of a conversation extends the previous turn's text; completion prompts
// are used as they are.
type promptText struct{ strings.Builder }

// addMessage appends one chat message.
func (p *promptText) addMessage(role string, content json.RawMessage) {
	p.WriteString(role)
	p.WriteByte('\n')
	p.addRaw(content)
	p.WriteByte('\n')
}

// addRaw appends a JSON value: a string as itself, an array of strings or
// of content parts ({"type":"text","text":...}) as their texts, anything
// else (token ids, objects) as its raw JSON.
func (p *promptText) addRaw(raw json.RawMessage) {
	if len(raw) == 0 || string(raw) == "null" {
		return
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		p.WriteString(s)
		return
	}
	var parts []json.RawMessage
	if json.Unmarshal(raw, &parts) == nil {
		for _, part := range parts {
			var ps string
			if json.Unmarshal(part, &ps) == nil {
				p.WriteString(ps)
				continue
			}
			var tp struct {
				Text *string `json:"text"`
			}
			if json.Unmarshal(part, &tp) == nil && tp.Text != nil {
				p.WriteString(*tp.Text)
				continue
			}
			p.Write(part)
		}
		return
	}
	p.Write(raw)
}

func (c PrefixCacheConfig) validate() error {
	if c.Blocks < 0 {
		return fmt.Errorf("sim: prefix_cache.blocks must be >= 0, got %d", c.Blocks)
	}
	if c.BlockTokens < 0 || c.BlockTokens > 1<<16 {
		return fmt.Errorf("sim: prefix_cache.block_tokens must be in 1..65536, got %d", c.BlockTokens)
	}
	return nil
}
