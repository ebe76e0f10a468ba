// Package flow is the gateway's flow control for one route (issue 14): a
// bounded queue used only when every node of the route is at its
// per-node limit, instead of answering 429 at once.
//
// A Queue counts the route's requests in flight against a limit, the sum
// of the per-node limits of the route's eligible nodes (the table owner
// sets it with SetLimit): while fewer are in flight, some node has room
// (the pick skips full nodes), and Enter returns at once. Otherwise the
// request waits, and every Leave (the gateway calls it when a request
// settles) hands the freed slot to the next waiter at once. A batch
// request starts only while fewer than 1 − Config.Reserve of the slots
// (default 80 %) are taken, by requests of any class (trunk reservation,
// as telephone exchanges keep circuits for priority calls): the rest
// stays free for interactive requests, so a batch backlog never makes an
// interactive request wait, nor pushes it onto whichever slow node a slot
// happens to free on, nor runs the nodes at their limit, where their own
// prefill and decode sharing slows every request (issue 14's burst
// target). Capping only the slots batch holds would not do that: with
// interactive requests holding more than the reserve, a batch backlog
// fills the route to its limit. Waiters are
// ordered by Fair: strict priority between classes (Interactive ahead of
// Batch), deficit round robin between the tenants of a class (Shreedhar
// and Varghese, "Efficient fair queuing using deficit round robin",
// SIGCOMM 1995) so that one tenant's backlog cannot starve another's, and
// first come first served within a tenant. A waiter whose deadline passes
// gets ErrQueueTimeout, one whose client goes away gets the context's
// error, and when the queue is full an arrival gets ErrQueueFull, unless
// it can displace the newest waiter of a lower class (which then gets
// ErrQueueFull). The gateway answers these with 429 or 503 and
// Retry-After (Queue.RetryAfter suggests a value). Config.Observe hears
// of every request that found the route full: how long it waited and how
// it left (an Outcome); with Queue.Depth and Queue.Limit it feeds the
// gateway's queue metrics.
//
// No goroutine is started per queued request: a waiter blocks in its own
// goroutine on a channel and a timer taken from a pool. Enter and Leave do
// not allocate once the pools are warm; an interactive request takes no
// lock while nothing waits (one atomic compare-and-swap each way), a batch
// one takes the queue's lock.
//
// Fair is the queue's ordering on its own (not safe for concurrent use),
// for simulations that cannot block goroutines (bench/affinity uses it).
//
// Queue's methods are safe for concurrent use.
package flow
