// Package tokenmeter holds the shared vocabulary of tokenmeter: the usage
// event that every metered LLM call becomes, its token categories, money in
// integer micro-dollars, the error codes that map onto HTTP statuses, and the
// one storage contract (Store) that the SQLite and PostgreSQL ledgers satisfy.
//
// It imports only the standard library. Everything that does work lives under
// internal/ and points inward at these types.
//
// The guarantees the rest of the program keeps, in one line each:
//
//   - G1 Nothing lost: a response that reached the client in full is in the
//     ledger; a call cut by a crash is there as "outcome unknown".
//   - G2 Nothing counted twice: every event has a deterministic idempotency key.
//   - G3 Counters move only by events; aggregates are derived, never stored.
//   - G4 The gateway adds no buffering: stream events are relayed as they come.
//   - G5 A hard budget is never exceeded (limits, a later capability).
//   - G6 Secrets never appear in the ledger, logs or reports: principals are hashes.
//   - G7 Bad input gets a clear error and changes nothing else.
package tokenmeter
