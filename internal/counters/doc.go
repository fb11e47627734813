// Package counters watches the providers' own rate-limit counters as they
// pass through the gateway (MISSION capability 7, docs/counters.md).
//
// Parse reads the rate-limit headers of one response (Anthropic's
// anthropic-ratelimit-* including the subscription "unified" ones, OpenAI's
// x-ratelimit-*, retry-after, and any other *ratelimit* header, kept raw)
// into tokenmeter.Samples; it never fails and never reads a header that
// could hold a secret. A Detector follows each series and finds early
// resets, drift against the ledger, moved resets, limit changes and
// throttling bursts; Judge adds the ledger's usage over the same span to a
// finding and produces the anomaly with its evidence document. A Watcher
// owns the goroutine that does all this off the response path: the gateway
// hands it observations through a bounded queue and never waits.
//
// Guarantees: Observe never blocks (a full queue drops and counts);
// samples are stored compactly (see Watcher.keep: changes of limit,
// status, window, anomalies, else one per series per minute) and pruned
// after the retention; each anomaly is stored once per kind, series and
// start, however often it is seen again.
package counters
