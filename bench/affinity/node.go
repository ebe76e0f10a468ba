package affinity

import (
	stdheap "container/heap"

	"github.com/switchyard-dev/switchyard/balancer"
)

// node is a simulated inference engine with continuous batching and a
// prefix cache, in the manner of vLLM:
//
//   - Requests wait in the engine's queue (FCFS) until the KV pool can hold
//     their prompt and output; then they run.
//   - A running request's prompt blocks already in the cache (a prefix:
//     the longest run of leading blocks present) are reused; the rest is
//     prefilled, as chunked prefill does: the prompts being prefilled share
//     the node's PrefillRate equally (processor sharing), each needing its
//     uncached tokens plus 0.4 TPOT's worth (reading the weights, as a
//     decode step does); a prefill's end yields the first token.
//   - Decoding sequences share the node: a step of n sequences takes
//     TPOT × (0.4 + 1.6 n/Batch), half again as long while a prefill runs
//     (chunked prefill shares the steps); every decoding sequence gets one
//     token a step.
//   - KV blocks of running requests are pinned; when a request ends its
//     full blocks (prompt and output: the next turn's prompt starts with
//     them) stay cached, least recently used evicted first; its last
//     partial block is dropped.
//   - It reports what vLLM's /metrics does: requests running and waiting,
//     KV usage (pinned blocks / all), prefix-cache hits and queries in
//     tokens.
type node struct {
	idx     int32
	card    int
	tpot    float64 // seconds per token alone
	batch   float64
	prefill float64 // prompt tokens per second
	kv      *lru
	limit   int // flow control: the most requests the gateway sends

	running int // admitted: prefilling or decoding
	waiting fifo

	// Prefilling, as processor sharing: a virtual clock pv (tokens each)
	// advancing at PrefillRate / prefills per second.
	pre  decodeHeap
	pv   float64
	pvAt float64
	pgen uint32

	// Decoding, as processor sharing: every decoding sequence advances by
	// one token a step, so progress is a virtual clock v (tokens) that
	// advances at 1/step(n) per second; a sequence ends when v reaches its
	// finish mark.
	dec   decodeHeap
	v     float64
	vAt   float64 // when v was last advanced
	gen   uint32  // invalidates scheduled completions when the rate changes
	hits  float64 // prefix-cache hit tokens, cumulative
	query float64 // prompt tokens, cumulative

	// Integrals of running requests, for load samples and utilisation.
	lastT, busyInt, measInt, lastBeat float64

	inflight int                // requests the gateway sent and not yet done
	ep       *balancer.Endpoint // balancer policies: the node's endpoint
	snap     snapshot
	sample   balancer.Load
}

// snapshot is what the engine's metrics said at the last refresh.
type snapshot struct {
	waiting, running int
	kvUsage          float64
	hits, queries    float64
}

// step returns the current decode step time: reading the weights
// (stepBase × TPOT, a lone sequence's step), then each sequence's KV, so
// that Batch sequences take 2 TPOT.
func (n *node) step() float64 {
	s := n.tpot * (stepBase + (2-stepBase)*float64(len(n.dec))/n.batch)
	if len(n.pre) > 0 {
		s *= prefillSlowdown
	}
	return s
}

// advancePrefill moves the prefill clock to t.
func (n *node) advancePrefill(t float64) {
	if len(n.pre) > 0 && t > n.pvAt {
		n.pv += (t - n.pvAt) * n.prefill / float64(len(n.pre))
	}
	n.pvAt = t
}

// nextPrefilled returns when the first prefill will end at the current
// sharing.
func (n *node) nextPrefilled() float64 {
	return n.pvAt + (n.pre[0].finish-n.pv)*float64(len(n.pre))/n.prefill
}

// prefillSlowdown is how much longer decode steps take while a prefill
// runs.
const prefillSlowdown = 1.5

// stepBase is the share of TPOT spent reading the weights: a lone
// sequence decodes at 0.4 TPOT a token (8 ms on the H100 of Cards, as an
// 8B model does), and every forward pass, a prefill's included, pays it.
const stepBase = 0.4

// advance moves the virtual clock to t at the current rate.
func (n *node) advance(t float64) {
	if len(n.dec) > 0 && t > n.vAt {
		n.v += (t - n.vAt) / n.step()
	}
	n.vAt = t
}

// nextDone returns when the first decoding sequence will end at the
// current rate.
func (n *node) nextDone() float64 {
	return n.vAt + (n.dec[0].finish-n.v)*n.step()
}

type decoding struct {
	finish float64
	r      *request
}

type decodeHeap []decoding

func (h decodeHeap) Len() int           { return len(h) }
func (h decodeHeap) Less(i, j int) bool { return h[i].finish < h[j].finish }
func (h decodeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *decodeHeap) Push(x any)        { *h = append(*h, x.(decoding)) }
func (h *decodeHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (n *node) startDecode(r *request) { stdheap.Push(&n.dec, decoding{n.v + float64(r.out), r}) }

func (n *node) popDecoded() *request { return stdheap.Pop(&n.dec).(decoding).r }

// fifo is a queue of requests.
type fifo struct {
	q    []*request
	head int
}

func (f *fifo) len() int { return len(f.q) - f.head }

func (f *fifo) push(r *request) { f.q = append(f.q, r) }

func (f *fifo) peek() *request { return f.q[f.head] }

func (f *fifo) pop() *request {
	r := f.q[f.head]
	f.q[f.head] = nil
	f.head++
	if f.head > 64 && f.head*2 > len(f.q) {
		f.q = append(f.q[:0], f.q[f.head:]...)
		f.head = 0
	}
	return r
}

// integrate advances the running-requests integrals to t.
func (n *node) integrate(t, warm, end float64) {
	dt := t - n.lastT
	if dt <= 0 {
		return
	}
	r := float64(n.running)
	n.busyInt += r * dt
	if lo := max(n.lastT, warm); t > lo && lo < end {
		n.measInt += r * (min(t, end) - lo)
	}
	n.lastT = t
}

// blocks returns how many KV blocks r needs in all: prompt and output.
func blocks(r *request) int {
	return (r.prompt + r.out + BlockTokens - 1) / BlockTokens
}

// admit tries to start r on n: it reports false (and changes nothing) when
// the KV pool cannot hold it.
func (n *node) admit(r *request) bool {
	total := blocks(r)
	// The cached prefix: leading full prompt blocks present.
	full := r.prompt / BlockTokens
	hit, unpinnedHits := 0, 0
	for ; hit < full; hit++ {
		s := n.kv.find(r.st.blockID(hit))
		if s < 0 {
			break
		}
		if n.kv.refs[s] == 0 {
			unpinnedHits++
		}
	}
	// The blocks to allocate must fit in what is neither pinned nor about
	// to be pinned as a hit.
	if total-hit > n.kv.evictable()-unpinnedHits {
		return false
	}
	slots := make([]int32, 0, total)
	for b := 0; b < hit; b++ {
		s := n.kv.find(r.st.blockID(b))
		n.kv.pin(s)
		slots = append(slots, s)
	}
	for b := hit; b < total; b++ {
		id := r.st.blockID(b)
		if (b+1)*BlockTokens > r.prompt+r.out {
			id = mix64(id ^ 0x9a47) // the last, partial block: never shared
		}
		s := n.kv.find(id)
		if s >= 0 {
			n.kv.pin(s)
		} else if s = n.kv.insert(id, true); s < 0 {
			panic("affinity: KV pool full after the check")
		}
		slots = append(slots, s)
	}
	r.slots = slots
	// vLLM computes at least the prompt's last token.
	r.cached = min(hit*BlockTokens, r.prompt-1)
	n.hits += float64(r.cached)
	n.query += float64(r.prompt)
	return true
}

// release unpins r's blocks; its last block, when partial, is dropped.
func (n *node) release(r *request) {
	slots := r.slots
	r.slots = nil
	for _, s := range slots {
		n.kv.unpin(s)
	}
	if (r.prompt+r.out)%BlockTokens != 0 {
		if s := slots[len(slots)-1]; n.kv.refs[s] == 0 {
			n.kv.remove(s)
		}
	}
}
