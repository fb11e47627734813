// Package reconcile compares tokenmeter's ledger with a provider's own
// usage and cost reports: Anthropic's Admin API
// (GET /v1/organizations/usage_report/messages and /cost_report) and
// OpenAI's organization APIs (GET /v1/organization/usage/completions and
// /costs), read with an admin credential.
//
// What it guarantees:
//
//   - A report is used only when every page of it was read and validated:
//     a page that lacks a required field, has one of the wrong type, or
//     is not JSON is an error naming the page and the field
//     (FieldError), and nothing of that report is compared or stored.
//     Fields this version does not read are kept (UsageRow.Extra).
//   - 429 is retried after its retry-after, 5xx, 529 and network errors
//     with doubling back-off (Client.Sleep is injectable); 401 and other
//     refusals are not retried. The admin key goes only into the auth
//     header: it never appears in an error or a log line.
//   - Units are normalised before comparing: token categories mean what
//     tokenmeter.Usage's fields mean (OpenAI input_tokens includes cached
//     tokens, which are taken out), and money is integer micro-dollars,
//     converted from the JSON text in decimal (Anthropic's decimal
//     strings in cents, OpenAI's numbers in dollars) without binary
//     floating point (DecimalMicros).
//   - The ledger is read with Store.Usage on the provider's grid (UTC,
//     the same bucket width), models are matched through
//     tokenmeter.ModelBase (aliases and dated snapshots), and by key the
//     ledger's principals are mapped to the provider's API key ids
//     through the key listing's hints (MatchKeys).
//   - Every difference is listed once, per row (bucket × model × key) and
//     category, classified provider-only, ledger-only or mismatch, with
//     the largest first. Buckets that end later than now minus the lag are
//     marked not final and do not count towards the status.
//
// Compare is a pure function of the reports and the ledger's buckets; Run
// fetches both and calls it; Schedule runs it periodically for serve.
package reconcile
