// Package codex reads the Codex CLI's session logs (rollout-*.jsonl under
// ~/.codex/sessions and ~/.codex/archived_sessions) into usage events, one
// per model response. A response is counted once however many times its
// usage is written down: re-emitted with an unchanged total, copied into a
// forked or sub-agent session, or kept in both the active and the archived
// directory.
//
// # What is counted
//
// Each line is {"timestamp", "type", "payload"}. Four types matter:
// session_meta names the session (payload.id), its working directory (cwd,
// the event's Project) and, for a fork, its parent (forked_from_id, or
// source.subagent.thread_spawn.parent_thread_id); turn_context names the
// model of the turns that follow; and event_msg lines whose payload.type is
// "token_count" carry payload.info.total_token_usage, the session's running
// total, and last_token_usage, the last response's share; token_usage_record
// lines (below) carry one response's usage and id. Other lines are not
// decoded: only lines that contain one of those four words are, so the
// large response_item lines cost a byte search.
//
// A token_count whose running total advanced gives one event; its usage is
// the difference from the previous total read in the file. A token_count
// with info null (the first of a session) or with the same total as before
// (Codex re-emits the total when rate limits are refreshed) gives none.
// last_token_usage is never summed (ccusage issues #876, #884: re-emits
// double-count). Codex's input_tokens include cached_input_tokens (and
// cache_write_input_tokens, when present) and its output_tokens include
// reasoning_output_tokens, so an event has InputTokens = Δinput − Δcached −
// Δwritten, CacheReadTokens = Δcached, CacheWrite5mTokens = Δwritten,
// OutputTokens = Δoutput (reasoning included) and ReasoningTokens =
// Δreasoning. Data that breaks those inclusions is capped (cached at input,
// written at the rest, reasoning at output) and the event's Reason says so;
// no count is ever negative. The fourth type, token_usage_record, is below.
//
// # token_usage_record (Codex 0.16x)
//
// Newer Codex also writes one {"type":"token_usage_record","payload":
// {"thread_id","turn_id","session_id","root_turn_id","response_id","usage",
// "turn_token_usage","thread_token_usage"}} line per response that reported
// usage, just before the token_count that adds it to the running total.
// usage is that response's alone (input_tokens includes cached_input_tokens
// and cache_write_input_tokens, output_tokens includes
// reasoning_output_tokens) and response_id is the Responses API id the
// provider gave it, which is also what the gateway records as the call's
// ResponseID: an imported response the gateway metered is recognised as
// that call and not counted again (Store.Import).
//
// When a file has both, each response is counted once, from its record:
// the record names the response and carries its exact usage, and the
// token_count after it then adds nothing. The record's event gets the
// request key the token_count's would have had (the running total before it
// plus the file's records since, see Event keys below), because a fork
// copies its parent's token_count lines but never its records: a copy must
// find the parent's record of the same response under the same key. A
// token_count whose difference is more than its records cover (a response
// Codex wrote no record for) counts the rest, as before. A record written
// after the token_count that counted its response (not the order of Codex
// 0.169, which writes the record first) is recognised by its usage equal
// to that count's, and gets the same key. A record of another thread
// (a delegate's response forwarded into this file) is not in this file's
// totals: it counts on its own, keyed "codex:" + response_id. Usage is
// split as for token_count: InputTokens = input − cached − written,
// CacheReadTokens = cached, CacheWrite5mTokens = written. A record that
// cannot be read is skipped with a warning, and its response is counted
// from the token_count that follows. Compacted lines, which quote the
// latest record, are not read. Files without records (older Codex) are
// read exactly as before.
//
// # Event keys and forks
//
// The request key is "codex:" + the lineage root + ":" + the running totals
// after the response (input.cached.output.reasoning), for example
// "codex:0199c0d2-…:16790.7936.640.384". The lineage root is the session at
// the top of the file's chain of forks: the file's own session, or its
// parent, or the parent's parent, and so on.
//
// When Codex forks a session (a fork from the TUI, or a sub-agent spawned
// with the parent's history) it copies the parent's rollout into the new
// file: the parent's session_meta, turn_context and token_count lines, with
// their payloads unchanged but each line stamped with the time it was
// copied (codex-rs writes every line with the current time). A key built
// from the line's timestamp, file or session would therefore differ between
// the original and the copy and the turn would count twice (ccusage issues
// #897, #988, #1288, #1349: up to 3.4x). The running totals are copied
// unchanged, and the child's own counter continues from the parent's total
// at the fork, so keying by (lineage root, running totals) gives a copied
// turn exactly the key of the parent's original and its usage exactly the
// original's difference: the ledger keeps one of the two. The child's own
// turns get totals the parent never had. Copies are not dropped, so when
// the parent's file is gone the copy still counts, once.
//
// The root is found from the session_meta lines read before the file's
// first token_count: the first is the file's own; the others are the
// ancestors' lines copied with their history. Each names its parent
// (forked_from_id or the thread_spawn parent), or, if it names none, the
// next copied session_meta is taken as its parent (older forks did not
// record the parent, but still copied its session_meta). A root outside the
// file is the last parent named. Once the first token_count is read the
// root is fixed. The codex-rs versions read for this copy session_meta
// lines with a fork's history (rollout policy: session_meta is always
// persisted). Were a copy two or more forks deep to lack them, the root
// would resolve to a nearer ancestor than the parent's file finds and the
// copied turns would count twice. A fork recorded as a reference to its
// parent's file, with nothing copied, is handled by the first-total rule
// below.
//
// Which copy the ledger keeps decides the event's Time and Session: the
// parent's original (its time, its session) or the fork's copy (the time of
// the fork, the fork's session). Counts are the same either way.
//
// Two sessions of one lineage that reach exactly the same four running
// totals would share a key and one response would be lost. That takes two
// branches whose responses match in input, cached input, output and
// reasoning counts to the token; it is accepted.
//
// # Totals that go backwards, and files without a start
//
// A running total that goes down in any of its four counts is a new counter
// (for example a resumed session or a fork whose counter started again at
// zero): the new total is counted whole, as a fresh start, and the event's
// Reason says so.
//
// When a file's first total is read without any earlier one (no saved
// state) and it is larger than that response's last_token_usage, the
// session's earlier usage is not in this file (a fork recorded by reference
// rather than copy, or a lost import state): only last_token_usage is
// counted and Reason says so, instead of counting the parent's whole
// history again.
//
// # Bad lines
//
// A line that is not a JSON object, has fields of the wrong type, negative
// counts, a running total above MaxTotalTokens or a single response above
// MaxTurnTokens is skipped with a warning that names the problem and echoes
// nothing of the line but a short number. A skipped token_count does not
// move the running total, so its usage is counted with the next good one.
//
// # Resuming
//
// End's state is compact JSON holding the file's session, its declared
// parent, project and current model, the lineage root once fixed (the
// copied session_meta lines until then) and the last running total:
//
//	{"v":1,"session":"0199c0d9-…","parent":"0199c0d2-…","cwd":"/home/ana/src/api",
//	 "model":"gpt-5-codex","root":"0199c0d2-…",
//	 "totals":{"input":53123,"cached":38912,"output":2465,"reasoning":1600}}
//
// with, for files with records, "covered" (the records read since the last
// total) and "last" (the usage of the last total's event, until a record
// follows it).
//
// Before the first token_count, "copied":[{"id":…,"parent":…}] stands in
// for "root". Opening at the saved offset with the state gives exactly the
// events one read of the whole file gives. A state that cannot be read is
// reported with the next line and reading goes on without it (the first
// total read then counts only its last_token_usage, as above).
package codex
