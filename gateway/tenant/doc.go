// Package tenant tells clients apart by API key and enforces each tenant's
// limits: requests per minute, tokens per minute, requests in flight, a
// priority class and a model allowlist (issue 15).
//
// It owns the API-key file (see Parse for its format), its reload
// when the file changes (Store.Run), the lookup of a request's key
// (Set.Lookup, BearerToken) and the limit state of every tenant. It never
// logs, returns or stores a key: keys are hashed with SHA-256 as soon as
// they are read, errors name a key by its entry's position and line, and
// a tenant is known by its name only. It does not speak HTTP: the gateway
// reads the headers, maps a refusal to 401/404/429 and never forwards the
// key upstream.
//
// # Hot path
//
// Set.Lookup, Tenant.Admit, Tenant.Acquire, Tenant.Release,
// Tenant.Allows and Tenant.Charge take no lock and allocate nothing
// (TestAdmitPathAlloc). A key is compared through its SHA-256 digest: the
// request's key is hashed, the digest looked up in a map and confirmed
// with crypto/subtle. Timing can then reveal at most something about the
// digest of the attacker's own guess, never about a stored key's bytes.
//
// # Limits
//
// Requests and tokens per minute are token buckets, written as GCRA (the
// generic cell rate algorithm: one atomic "theoretical arrival time" per
// bucket, updated by compare-and-swap). Each bucket holds a minute's worth
// (the limit) and refills at limit/60 per second, so a tenant may spend a
// whole minute's budget in a burst and then its steady rate. Tokens are
// charged after the response, when the usage is known (Charge), and may
// take the bucket into debt; while the tenant is in debt Admit refuses
// with the time until it is not. Requests per minute are taken at Admit.
// A limit of 0 means unlimited.
//
// When the file is reloaded, a tenant keeps its name, its requests in
// flight and what it has used of each bucket (counted in requests and
// tokens); only its limits change.
//
// # Several gateways
//
// Limits are per gateway instance: there is no shared store and no
// cluster protocol. A deployment of N gateway replicas lets a tenant use
// up to N times each limit. To hold a tenant to a fleet-wide budget, write
// the limit divided by the replica count in the file; that is exact when
// the load balancer in front spreads each tenant's requests evenly, and
// approximate otherwise (a tenant whose connections all land on one
// replica gets 1/N of its budget).
//
// Everything here is safe for concurrent use.
package tenant
