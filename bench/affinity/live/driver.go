package live

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/switchyard-dev/switchyard/bench/affinity"
	"github.com/switchyard-dev/switchyard/engines/sim"
)

// record is one request's outcome.
type record struct {
	batch    bool
	start    time.Time
	ttft     time.Duration // to the first content event; -1 without one
	total    time.Duration
	ok       bool
	fail     string // why it was lost
	node     string
	measured bool
}

// message is one OpenAI chat message.
type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

type chatRequest struct {
	Model     string    `json:"model"`
	Messages  []message `json:"messages"`
	MaxTokens int       `json:"max_tokens"`
	Stream    bool      `json:"stream"`
}

// driver sends one run's traffic.
type driver struct {
	cfg    *Config
	url    string
	client *http.Client
	rate   float64 // offered requests a second
	convs  float64 // share of arrivals that are conversations
	arrive float64 // arrivals a second (conversations and batch jobs)

	// Texts: each family's system prompt and the batch instruction.
	system []string
	batch  string

	start, windowStart, windowEnd time.Time

	mu   sync.Mutex
	recs []record // guarded by mu
}

// newDriver prepares the traffic of cfg at rate requests a second
// against url; meanTurns is the mean turns of a conversation.
func newDriver(cfg *Config, url string, rate, meanTurns float64) *driver {
	w := &cfg.Workload
	d := &driver{cfg: cfg, url: url, rate: rate,
		client: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 1024, DisableCompression: true}}}
	// Requests a second: conversations × meanTurns + batch jobs.
	convRate := rate * (1 - w.BatchShare) / meanTurns
	batchRate := rate * w.BatchShare
	d.arrive = convRate + batchRate
	d.convs = convRate / d.arrive
	for i, f := range w.Families {
		d.system = append(d.system, "You are assistant number "+fmt.Sprint(i)+". "+text(uint64(i)<<40|0x5157, f.Tokens*sim.CharsPerToken))
	}
	d.batch = "Summarise the document below in three sentences. " + text(0xba7c4, w.BatchPrefix*sim.CharsPerToken)
	return d
}

// words are the pseudo-text of prompts: plain ASCII, nothing to escape.
var words = strings.Fields("the a of and to in is that it for on with as was at by an be this which from or have not are but its one all can more their will also about there been into other may has time first only some what these two would when after such any new most over them very then where just made like")

// text returns n bytes of pseudo-text drawn from seed: the same seed
// gives the same text.
func text(seed uint64, n int) string {
	rng := rand.New(rand.NewPCG(seed, 0x7e47))
	var b strings.Builder
	b.Grow(n + 16)
	for b.Len() < n {
		b.WriteString(words[rng.IntN(len(words))])
		b.WriteByte(' ')
	}
	return b.String()[:n]
}

// run sends the traffic: Poisson arrivals for warmup + measure, each
// conversation's turns after its think times while arrivals run, then
// waits up to Drain for the requests in flight.
func (d *driver) run(ctx context.Context, seed uint64) {
	w := &d.cfg.Workload
	rng := rand.New(rand.NewPCG(seed, 0xa771))
	d.start = time.Now()
	d.windowStart = d.start.Add(d.cfg.Warmup)
	d.windowEnd = d.windowStart.Add(d.cfg.Measure)
	reqCtx, cancelReqs := context.WithCancel(ctx)
	defer cancelReqs()
	var wg sync.WaitGroup
	timer := time.NewTimer(0)
	defer timer.Stop()
	next := d.start
	for id := uint64(0); ; id++ {
		next = next.Add(time.Duration(rng.ExpFloat64() / d.arrive * float64(time.Second)))
		if !next.Before(d.windowEnd) {
			break
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if rng.Float64() < d.convs {
			c := affinity.DrawConversation(rng, w, id)
			wg.Go(func() { d.conversation(reqCtx, id, c) })
		} else {
			j := affinity.DrawBatchJob(rng, w)
			wg.Go(func() { d.batchJob(reqCtx, id, j) })
		}
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	drain := time.NewTimer(d.cfg.Drain)
	defer drain.Stop()
	select {
	case <-done:
	case <-drain.C:
		cancelReqs() // what still runs is lost
		<-done
	case <-ctx.Done():
		<-done
	}
}

// conversation sends c's turns in order, each after its think time,
// while arrivals run; a failed turn ends it.
func (d *driver) conversation(ctx context.Context, id uint64, c affinity.Conversation) {
	msgs := []message{{Role: "system", Content: d.system[c.Family]}}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for k, t := range c.Turns {
		if k > 0 {
			if time.Now().Add(t.Think).After(d.windowEnd) {
				return
			}
			timer.Reset(t.Think)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		msgs = append(msgs, message{Role: "user", Content: fmt.Sprintf("Turn %d of conversation %d. ", k, id) + text(id<<8|uint64(k), t.User*sim.CharsPerToken)})
		reply, ok := d.send(ctx, false, msgs, t.Out)
		if !ok {
			return
		}
		msgs = append(msgs, message{Role: "assistant", Content: reply})
	}
}

func (d *driver) batchJob(ctx context.Context, id uint64, j affinity.BatchJob) {
	msgs := []message{{Role: "system", Content: d.batch}, {Role: "user", Content: text(id<<8|0xd0c, j.Doc*sim.CharsPerToken)}}
	d.send(ctx, true, msgs, j.Out)
}

// send streams one chat completion and records it; it returns the
// assistant's reply as streamed.
func (d *driver) send(ctx context.Context, batch bool, msgs []message, out int) (string, bool) {
	body, _ := json.Marshal(chatRequest{Model: Model, Messages: msgs, MaxTokens: out, Stream: true})
	r := record{batch: batch, start: time.Now(), ttft: -1}
	r.measured = !r.start.Before(d.windowStart) && r.start.Before(d.windowEnd)
	reply, err := d.stream(ctx, body, batch, &r)
	r.total = time.Since(r.start)
	if err != nil {
		r.fail = err.Error()
	} else {
		r.ok = true
	}
	d.mu.Lock()
	d.recs = append(d.recs, r)
	d.mu.Unlock()
	return reply, err == nil
}

// streamChunk is what the driver reads of an SSE chat chunk.
type streamChunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
	} `json:"choices"`
}

var errNoDone = errors.New("stream ended without [DONE]")

func (d *driver) stream(ctx context.Context, body []byte, batch bool, r *record) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if batch {
		req.Header.Set("X-Switchyard-Priority", "batch")
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return "", errKind(err)
	}
	defer resp.Body.Close()
	r.node = resp.Header.Get(sim.NodeHeader)
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return "", fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	br := bufio.NewReaderSize(resp.Body, 16<<10)
	var reply strings.Builder
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				return "", errNoDone
			}
			return "", errKind(err)
		}
		data, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r\n"), []byte("data: "))
		if !ok {
			continue
		}
		if string(data) == "[DONE]" {
			return reply.String(), nil
		}
		var ch streamChunk
		if err := json.Unmarshal(data, &ch); err != nil {
			return "", fmt.Errorf("bad SSE chunk: %w", err)
		}
		for _, c := range ch.Choices {
			if c.Delta.Content == "" {
				continue
			}
			if r.ttft < 0 {
				r.ttft = time.Since(r.start)
			}
			reply.WriteString(c.Delta.Content)
		}
	}
}

// errKind shortens transport errors for the report.
func errKind(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return errors.New("unfinished when the drain ended")
	case errors.Is(err, context.DeadlineExceeded):
		return errors.New("timeout (2m)")
	}
	return err
}

// records returns the records so far.
func (d *driver) records() []record {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]record(nil), d.recs...)
}
