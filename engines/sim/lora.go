package sim

import (
	"container/list"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// LoRAConfig serves LoRA adapters on top of the base model. A request
// whose "model" names an adapter needs it loaded in one of MaxLoRAs slots
// first: a loaded adapter is used at once; otherwise the least recently
// used idle adapter is evicted and the new one loaded, which takes
// LoadTime; when every slot holds an adapter with running requests, the
// request waits (counted as waiting, its adapter listed in
// waiting_lora_adapters) until one goes idle. This is vLLM's --max-loras
// batch limit with the adapter load folded into the wait.
type LoRAConfig struct {
	// Adapters lists the adapter names served.
	Adapters []string `yaml:"adapters" json:"adapters,omitempty"`
	// Prefix, when set, also serves any model name starting with it.
	Prefix string `yaml:"prefix" json:"prefix,omitempty"`
	// MaxLoRAs is the number of adapter slots (default 1, vLLM's
	// --max-loras default).
	MaxLoRAs int `yaml:"max_loras" json:"max_loras"`
	// LoadTime is the cost of loading an adapter into a slot (default
	// 100ms), scaled by the slowdown factor.
	LoadTime time.Duration `yaml:"load_time" json:"load_time"`
}

// Enabled reports whether any adapter is served.
func (c LoRAConfig) Enabled() bool { return len(c.Adapters) > 0 || c.Prefix != "" }

// Serves reports whether name is one of the adapters.
func (c LoRAConfig) Serves(name string) bool {
	if name == "" {
		return false
	}
	if c.Prefix != "" && strings.HasPrefix(name, c.Prefix) {
		return true
	}
	return slices.Contains(c.Adapters, name)
}

func (c LoRAConfig) validate() error {
	if c.MaxLoRAs < 0 {
		return fmt.Errorf("sim: lora.max_loras must be >= 1, got %d", c.MaxLoRAs)
	}
	if c.LoadTime < 0 {
		return fmt.Errorf("sim: lora.load_time must be >= 0, got %v", c.LoadTime)
	}
	for i, a := range c.Adapters {
		if a == "" || strings.ContainsAny(a, ",\n\"") {
			return fmt.Errorf("sim: lora.adapters[%d] %q: empty or contains ',', '\"' or a newline", i, a)
		}
	}
	return nil
}

// loraSlots manages the loaded adapters. It is safe for concurrent use.
type loraSlots struct {
	max int
	now func() time.Time

	mu      sync.Mutex
	slots   map[string]*loraSlot     // guarded by mu: loaded or loading adapters
	lru     *list.List               // guarded by mu: adapter names, front = most recent
	waiting map[string]int           // guarded by mu: requests waiting per adapter
	loads   int64                    // guarded by mu: adapter loads started
	changed chan struct{}            // guarded by mu: closed and replaced on every change
	elems   map[string]*list.Element // guarded by mu
	// series remembers every (running, waiting) label set reported, with
	// the time it was last current, like vLLM's lora_requests_info gauge
	// whose old label sets stay exported with their old timestamps.
	series map[loraKey]time.Time // guarded by mu
}

// loraKey is one label set of vllm:lora_requests_info.
type loraKey struct{ running, waiting string }

// maxLoRASeries bounds the remembered label sets.
const maxLoRASeries = 32

type loraSlot struct {
	running int           // requests holding the adapter
	loaded  chan struct{} // closed once the load finished
	ok      bool          // the load finished (false: aborted, slot freed)
}

func newLoRASlots(max int, now func() time.Time) *loraSlots {
	l := &loraSlots{max: max, now: now, slots: map[string]*loraSlot{}, lru: list.New(), waiting: map[string]int{},
		changed: make(chan struct{}), elems: map[string]*list.Element{}, series: map[loraKey]time.Time{}}
	l.series[loraKey{}] = now()
	return l
}

var errLoRAStopped = errors.New("sim: node stopped while waiting for a LoRA slot")

// acquire holds adapter name for one request, loading it if needed. load
// sleeps the load time and returns false when the node stops; done aborts
// a wait. While it waits for a slot or a load the request is listed in
// the adapter's waiting count. release must be called after a nil error.
func (l *loraSlots) acquire(name string, load func() bool, done <-chan struct{}) error {
	l.mu.Lock()
	waited := false
	defer func() {
		if waited {
			l.waiting[name]--
			if l.waiting[name] == 0 {
				delete(l.waiting, name)
			}
			l.notifyLocked()
		}
		l.mu.Unlock()
	}()
	for {
		if s, ok := l.slots[name]; ok {
			if s.ok {
				s.running++
				l.lru.MoveToFront(l.elems[name])
				l.notifyLocked()
				return nil
			}
			// Loading by another request: wait for it.
			if !waited {
				waited = true
				l.waiting[name]++
				l.notifyLocked()
			}
			ch := s.loaded
			l.mu.Unlock()
			select {
			case <-ch:
			case <-done:
				l.mu.Lock()
				return errLoRAStopped
			}
			l.mu.Lock()
			continue
		}
		if len(l.slots) >= l.max && !l.evictIdleLocked() {
			if !waited {
				waited = true
				l.waiting[name]++
				l.notifyLocked()
			}
			ch := l.changed
			l.mu.Unlock()
			select {
			case <-ch:
			case <-done:
				l.mu.Lock()
				return errLoRAStopped
			}
			l.mu.Lock()
			continue
		}
		// Take a free slot and load the adapter; requests for the same
		// adapter wait on s.loaded meanwhile.
		s := &loraSlot{loaded: make(chan struct{})}
		l.slots[name] = s
		l.elems[name] = l.lru.PushFront(name)
		l.loads++
		if !waited {
			waited = true
			l.waiting[name]++
		}
		l.notifyLocked()
		l.mu.Unlock()
		ok := load()
		l.mu.Lock()
		close(s.loaded)
		if !ok {
			l.removeLocked(name)
			l.notifyLocked()
			return errLoRAStopped
		}
		s.ok = true
		s.running++
		l.notifyLocked()
		return nil
	}
}

// release drops one request's hold on name.
func (l *loraSlots) release(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if s, ok := l.slots[name]; ok && s.running > 0 {
		s.running--
		l.notifyLocked()
	}
}

// evictIdleLocked unloads the least recently used adapter with no running
// request and no load in progress; false if there is none.
func (l *loraSlots) evictIdleLocked() bool {
	for e := l.lru.Back(); e != nil; e = e.Prev() {
		name := e.Value.(string)
		if s := l.slots[name]; s.ok && s.running == 0 {
			l.removeLocked(name)
			return true
		}
	}
	return false
}

func (l *loraSlots) removeLocked(name string) {
	if e, ok := l.elems[name]; ok {
		l.lru.Remove(e)
		delete(l.elems, name)
	}
	delete(l.slots, name)
}

// notifyLocked wakes waiters and stamps the current label set.
func (l *loraSlots) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
	l.stampLocked()
}

func (l *loraSlots) stampLocked() {
	st := l.statsLocked()
	l.series[loraKey{strings.Join(st.Running, ","), strings.Join(st.Waiting, ",")}] = l.now()
	for len(l.series) > maxLoRASeries {
		var oldest loraKey
		first := true
		for k, t := range l.series {
			if first || t.Before(l.series[oldest]) {
				oldest, first = k, false
			}
		}
		delete(l.series, oldest)
	}
}

// loraSeries is one exported label set and its timestamp.
type loraSeries struct {
	Running, Waiting string
	At               time.Time
}

// seriesSnapshot returns the remembered label sets, oldest first. While
// requests run or wait the engine keeps stepping, so the current set is
// stamped now first (vLLM sets the gauge on every engine step).
func (l *loraSlots) seriesSnapshot() []loraSeries {
	l.mu.Lock()
	defer l.mu.Unlock()
	if st := l.statsLocked(); len(st.Running) > 0 || len(st.Waiting) > 0 {
		l.stampLocked()
	}
	out := make([]loraSeries, 0, len(l.series))
	for k, t := range l.series {
		out = append(out, loraSeries{k.running, k.waiting, t})
	}
	slices.SortFunc(out, func(a, b loraSeries) int {
		if c := a.At.Compare(b.At); c != 0 {
			return c
		}
		return strings.Compare(a.Running+"|"+a.Waiting, b.Running+"|"+b.Waiting)
	})
	return out
}

// LoRAStats is a snapshot of the adapter slots.
type LoRAStats struct {
	// Loaded lists the adapters in a slot (loaded or loading), sorted.
	Loaded []string `json:"loaded"`
	// Running lists adapters with running requests, sorted.
	Running []string `json:"running"`
	// Waiting lists adapters with requests waiting for a slot or a load,
	// sorted.
	Waiting []string `json:"waiting"`
	// MaxLoRAs is the slot count.
	MaxLoRAs int `json:"max_loras"`
	// Loads counts adapter loads started.
	Loads int64 `json:"loads"`
}

func (l *loraSlots) stats() LoRAStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.statsLocked()
}

func (l *loraSlots) statsLocked() LoRAStats {
	st := LoRAStats{MaxLoRAs: l.max, Loads: l.loads, Loaded: []string{}, Running: []string{}, Waiting: []string{}}
	for name, s := range l.slots {
		st.Loaded = append(st.Loaded, name)
		if s.running > 0 {
			st.Running = append(st.Running, name)
		}
	}
	for name := range l.waiting {
		st.Waiting = append(st.Waiting, name)
	}
	slices.Sort(st.Loaded)
	slices.Sort(st.Running)
	slices.Sort(st.Waiting)
	return st
}
