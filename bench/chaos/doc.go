// Package chaos is the chaos suite of issue 12: it builds Switchyard's
// whole topology on loopback from the real binary — three peered
// Resource instances speaking mTLS only, with a credentials file (scoped
// agent, peer and reader credentials; tokens and certificate SANs), five
// simulated engines (`switchyard sim`) each with its `switchyard agent`,
// two fixture nodes (a recorder engine in this process, HTTP and gRPC,
// and a node whose address is the gateway itself), and `switchyard
// gateway` with a YAML config fed by discovery over mTLS and an admin
// token file — then runs every fault and attack of the issue against it
// under bounded, self-stopping load, and reports a table: case,
// expected, observed, requests sent, answered, lost or wrong, pass or
// fail. The test CA and every certificate are generated at each run
// (certs.go) into the run's directory. Some cases start processes of
// their own for their length: a second gateway (a TLS client listener,
// an https:// engine, a CA it must not trust), an https engine, agents
// with bound credentials, a Resource instance with small limits.
//
// The report names the commit the binary was built from (its `switchyard
// version`) and the work tree's commit and whether it had uncommitted
// changes.
//
// Every request is accounted for: answered (by status), expected
// non-answers that a case names (a stream an engine's kill cut, a
// connection a stopped gateway refused), lost (no answer, or a transport
// error the case does not expect) and wrong (an answer that should not
// be: a 200 for a refused path, a clean end of a cut stream, a status
// the case does not allow). A case fails on any lost or wrong request
// and on any failed check; each check can fail, and each fault checks
// that it hit (a kill that cut no stream fails its case).
//
// Run starts the processes as children in process groups of their own,
// with the parent-death signal (they die with the harness), always
// stops them, and then checks that no process of the run is left (by
// pid, and by a marker in their environment). Only loopback addresses
// are targets. Linux only: it reads /proc for memory and leftovers.
//
// `switchyard bench chaos` runs it (`make chaos`: every case, under 10
// minutes on 2 cores); TestQuick runs the CI subset (`make test`).
//
// Run owns every goroutine and process it starts; it is not meant to be
// called concurrently with itself (the cases use fixed loopback source
// addresses 127.0.0.2–10).
package chaos
