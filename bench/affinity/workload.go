package affinity

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/switchyard-dev/switchyard/gateway/prefix"
)

// Salts keep the identities of the different streams apart.
const (
	saltFamily = 0xfa111e5 << 20
	saltConv   = 0xc0417e4 << 20
	saltBatch  = 0xba7c4 << 24
	saltJob    = 0x70b << 32
	saltEnd    = 0xe4d0fe4d0fe4d
)

// stream identifies a token stream whose first shared tokens belong to a
// shared prefix (a family's system prompt, the batch instruction): block
// and point identities up to shared come from the prefix, the rest from
// the stream's own id.
type stream struct {
	prefixID, ownID uint64
	shared          int // tokens of the shared prefix
}

// blockID is the identity of full block b (0-based, BlockTokens tokens):
// what vLLM's chained block hash names.
func (st stream) blockID(b int) uint64 {
	if (b+1)*BlockTokens <= st.shared {
		return mix64(st.prefixID + uint64(b))
	}
	return mix64(st.ownID + uint64(b))
}

// pointID is the identity gateway/prefix gives the stream's first tokens
// tokens (4 characters a token); end marks a message end.
func (st stream) pointID(tokens int, end bool) uint64 {
	id := st.ownID
	if tokens <= st.shared {
		id = st.prefixID
	}
	h := mix64(id ^ uint64(tokens)<<1)
	if end {
		h = mix64(h ^ saltEnd)
	}
	return h
}

// turn is one pre-drawn turn of a conversation.
type turn struct {
	user, out int
	think     float64 // seconds after the previous response, before this turn
}

// conv is one conversation: drawn whole when it starts, so that every
// policy sees the same conversations (common random numbers).
type conv struct {
	id    uint64
	fam   int
	st    stream
	turns []turn
	next  int // the turn to send next
	user  uint64
}

// request is one request to the route.
type request struct {
	conv   *conv // nil for batch
	batch  bool
	st     stream
	prompt int // tokens
	out    int
	ends   []int // message ends in tokens, increasing; the last is prompt

	arrive, admit, first, done float64
	cached                     int
	slots                      []int32 // the KV blocks it pins while it runs
	node                       int32
	measured                   bool
}

func lognormal(rng *rand.Rand, mean, sigma float64) float64 {
	return mean * math.Exp(sigma*rng.NormFloat64()-sigma*sigma/2)
}

// newConv draws a conversation.
func newConv(rng *rand.Rand, w *Workload, id uint64) *conv {
	u := rng.Float64()
	var sum float64
	for _, f := range w.Families {
		sum += f.Weight
	}
	fam := len(w.Families) - 1
	for i, f := range w.Families {
		if u -= f.Weight / sum; u < 0 {
			fam = i
			break
		}
	}
	c := &conv{id: id, fam: fam, user: mix64(id ^ 0x05e4)}
	c.st = stream{prefixID: saltFamily + uint64(fam)<<32, ownID: saltConv + id<<24, shared: w.Families[fam].Tokens}
	n := 1
	for p := 1 / w.MeanTurns; rng.Float64() > p && n < 20; {
		n++
	}
	c.turns = make([]turn, n)
	context := w.Families[fam].Tokens
	for i := range c.turns {
		c.turns[i] = turn{
			user:  max(1, min(2000, int(math.Round(lognormal(rng, w.UserTokens, w.UserSigma))))),
			out:   max(8, min(w.MaxOut, int(math.Round(lognormal(rng, w.OutTokens, w.OutSigma))))),
			think: lognormal(rng, w.Think.Seconds(), w.ThinkSigma),
		}
		context += c.turns[i].user + c.turns[i].out
		if context > w.MaxContext && i > 0 && i < n {
			// The context window is full: the conversation ends here (the
			// draws are made anyway, so later conversations do not shift).
			n = i
		}
	}
	c.turns = c.turns[:min(n, len(c.turns))]
	return c
}

// request returns the conversation's next turn as a request.
func (c *conv) request(w *Workload) *request {
	r := &request{conv: c, st: c.st}
	pos := w.Families[c.fam].Tokens
	r.ends = append(r.ends, pos)
	for k := 0; k < c.next; k++ {
		pos += c.turns[k].user
		r.ends = append(r.ends, pos)
		pos += c.turns[k].out
		r.ends = append(r.ends, pos)
	}
	pos += c.turns[c.next].user
	r.ends = append(r.ends, pos)
	r.prompt, r.out = pos, c.turns[c.next].out
	c.next++
	return r
}

// batchRequest draws a batch job: the shared instruction and a document.
func batchRequest(rng *rand.Rand, w *Workload, id uint64) *request {
	doc := max(16, min(8000, int(math.Round(lognormal(rng, w.BatchDoc, w.BatchDocSigma)))))
	out := max(8, min(w.MaxOut, int(math.Round(lognormal(rng, w.BatchOut, w.OutSigma)))))
	r := &request{batch: true, st: stream{prefixID: saltBatch, ownID: saltJob + id<<24, shared: w.BatchPrefix}}
	r.prompt, r.out = w.BatchPrefix+doc, out
	r.ends = []int{w.BatchPrefix, r.prompt}
	return r
}

// points writes the request's prefix points as gateway/prefix computes
// them from the body (4 characters a token): block points at its block
// ends and a point at each message end, in order.
func (r *request) points(hashes []uint64, ends []uint32) ([]uint64, []uint32) {
	hashes, ends = hashes[:0], ends[:0]
	const charsPerToken = 4
	blockTokens := prefix.BlockSize / charsPerToken
	m := 0
	for b := 1; b*blockTokens <= r.prompt; b++ {
		p := b * blockTokens
		for m < len(r.ends) && r.ends[m] < p {
			hashes = append(hashes, r.st.pointID(r.ends[m], true))
			ends = append(ends, uint32(r.ends[m]*charsPerToken))
			m++
		}
		if prefix.IsBlockPoint(b) {
			hashes = append(hashes, r.st.pointID(p, false))
			ends = append(ends, uint32(p*charsPerToken))
		}
	}
	for ; m < len(r.ends); m++ {
		hashes = append(hashes, r.st.pointID(r.ends[m], true))
		ends = append(ends, uint32(r.ends[m]*charsPerToken))
	}
	if !slices.IsSorted(ends) {
		panic("affinity: points out of order")
	}
	return hashes, ends
}

// Conversation is a conversation drawn from a Workload, for drivers that
// send real requests (bench/affinity/live): its system prompt's family
// and its turns.
type Conversation struct {
	// Family indexes Workload.Families: the shared system prompt.
	Family int
	Turns  []Turn
}

// Turn is one turn of a Conversation.
type Turn struct {
	// User is the user message's length and Out the response's, in
	// tokens.
	User, Out int
	// Think is the wait after the previous response before this turn.
	Think time.Duration
}

// DrawConversation draws conversation id from w with rng, as the
// simulation draws its own (same families, turns, lengths and think
// times).
func DrawConversation(rng *rand.Rand, w *Workload, id uint64) Conversation {
	c := newConv(rng, w, id)
	out := Conversation{Family: c.fam, Turns: make([]Turn, len(c.turns))}
	for i, t := range c.turns {
		out.Turns[i] = Turn{User: t.user, Out: t.out, Think: time.Duration(t.think * float64(time.Second))}
	}
	return out
}

// BatchJob is a batch tenant's job drawn from a Workload: the shared
// instruction (Workload.BatchPrefix tokens), a document and the output,
// in tokens.
type BatchJob struct{ Doc, Out int }

// DrawBatchJob draws a batch job from w with rng, as the simulation does.
func DrawBatchJob(rng *rand.Rand, w *Workload) BatchJob {
	r := batchRequest(rng, w, 0)
	return BatchJob{Doc: r.prompt - w.BatchPrefix, Out: r.out}
}
