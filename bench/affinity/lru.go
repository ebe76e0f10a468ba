package affinity

// lru is a fixed-capacity set of uint64 keys (block identities) with
// reference counts and least-recently-used eviction among the keys with no
// references: an engine's KV block pool with its prefix cache (vLLM's
// free-block queue), and, with references never taken, a plain LRU (GIE's
// per-server indexer). Slots are dense int32s; the key → slot table uses
// open addressing with linear probing and backward-shift deletion, so
// nothing allocates after creation.
type lru struct {
	keys       []uint64
	refs       []int32
	prev, next []int32 // the evictable list, oldest first; -1 ends
	head, tail int32
	free       []int32 // unused slots
	table      []int32 // key → slot+1; 0 empty
	mask       uint64
	used       int // slots holding a key
	pinned     int // slots with references
	onEvict    func(key uint64)
}

func newLRU(capacity int) *lru {
	n := 1
	for n < 2*capacity {
		n <<= 1
	}
	l := &lru{
		keys: make([]uint64, capacity), refs: make([]int32, capacity),
		prev: make([]int32, capacity), next: make([]int32, capacity),
		head: -1, tail: -1, free: make([]int32, capacity),
		table: make([]int32, n), mask: uint64(n - 1),
	}
	for i := range l.free {
		l.free[i] = int32(capacity - 1 - i)
	}
	return l
}

func (l *lru) capacity() int { return len(l.keys) }

// find returns key's slot, or -1.
func (l *lru) find(key uint64) int32 {
	for p := mix64(key) & l.mask; ; p = (p + 1) & l.mask {
		s := l.table[p]
		if s == 0 {
			return -1
		}
		if l.keys[s-1] == key {
			return s - 1
		}
	}
}

func (l *lru) tableInsert(key uint64, slot int32) {
	p := mix64(key) & l.mask
	for l.table[p] != 0 {
		p = (p + 1) & l.mask
	}
	l.table[p] = slot + 1
}

func (l *lru) tableDelete(key uint64) {
	p := mix64(key) & l.mask
	for l.keys[l.table[p]-1] != key {
		p = (p + 1) & l.mask
	}
	// Backward shift: move later entries of the cluster into the hole.
	for {
		l.table[p] = 0
		q := p
		for {
			q = (q + 1) & l.mask
			s := l.table[q]
			if s == 0 {
				return
			}
			home := mix64(l.keys[s-1]) & l.mask
			// The entry at q may fill the hole at p unless its home lies
			// cyclically in (p, q].
			if (q > p && (home <= p || home > q)) || (q < p && home <= p && home > q) {
				l.table[p] = s
				p = q
				break
			}
		}
	}
}

func (l *lru) unlink(s int32) {
	if l.prev[s] >= 0 {
		l.next[l.prev[s]] = l.next[s]
	} else {
		l.head = l.next[s]
	}
	if l.next[s] >= 0 {
		l.prev[l.next[s]] = l.prev[s]
	} else {
		l.tail = l.prev[s]
	}
}

func (l *lru) pushTail(s int32) {
	l.prev[s], l.next[s] = l.tail, -1
	if l.tail >= 0 {
		l.next[l.tail] = s
	} else {
		l.head = s
	}
	l.tail = s
}

// pin takes a reference on slot s (out of the evictable list).
func (l *lru) pin(s int32) {
	if l.refs[s] == 0 {
		l.unlink(s)
		l.pinned++
	}
	l.refs[s]++
}

// unpin drops a reference; an unreferenced slot becomes the most recent
// evictable one.
func (l *lru) unpin(s int32) {
	l.refs[s]--
	if l.refs[s] == 0 {
		l.pinned--
		l.pushTail(s)
	}
}

// touch makes an unreferenced slot the most recent.
func (l *lru) touch(s int32) {
	if l.refs[s] == 0 {
		l.unlink(s)
		l.pushTail(s)
	}
}

// insert adds key, evicting the least recent unreferenced key when full,
// and returns its slot, pinned when pinned is set; -1 when every slot is
// referenced.
func (l *lru) insert(key uint64, pinned bool) int32 {
	var s int32
	if k := len(l.free); k > 0 {
		s = l.free[k-1]
		l.free = l.free[:k-1]
	} else {
		if l.head < 0 {
			return -1
		}
		s = l.head
		l.unlink(s)
		old := l.keys[s]
		l.tableDelete(old)
		l.used--
		if l.onEvict != nil {
			l.onEvict(old)
		}
	}
	l.keys[s] = key
	l.tableInsert(key, s)
	l.used++
	if pinned {
		l.refs[s] = 1
		l.pinned++
	} else {
		l.refs[s] = 0
		l.pushTail(s)
	}
	return s
}

// remove drops an unreferenced slot's key (a partial block that is never
// cached).
func (l *lru) remove(s int32) {
	if l.refs[s] != 0 {
		panic("affinity: lru: removing a referenced block")
	}
	l.unlink(s)
	l.tableDelete(l.keys[s])
	l.used--
	l.free = append(l.free, s)
}

// evictable returns how many slots could take a new key.
func (l *lru) evictable() int { return len(l.keys) - l.pinned }

// mix64 is splitmix64's finaliser.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xBF58476D1CE4E5B9
	x ^= x >> 27
	x *= 0x94D049BB133111EB
	return x ^ x>>31
}
