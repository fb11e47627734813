// Command loadgen drives an Anthropic Messages endpoint (the gateway, the
// bare proxy or fake-upstream directly) and reports latency and throughput.
//
// Modes:
//
//	latency     one connection, --n sequential requests after --warmup ones;
//	            p50/p90/p99/max in µs
//	throughput  --c connections for --d; requests/s, p50/p99, errors, and how
//	            many responses carried X-Tokenmeter-Request-Id (served)
//	streams     --c concurrent streaming requests held open for --d (the
//	            upstream pauses --delay between events), for memory figures
//	body        print the request body and exit (for cross-checks with wrk)
//
// --target is a base URL including the route prefix; /v1/messages is
// appended: http://127.0.0.1:8787/anthropic for the gateway,
// http://127.0.0.1:8788 for fake-upstream itself.
//
// The result goes to stdout as one JSON line; a human-readable line goes to
// stderr. With --ids FILE, the gateway request id of every response that
// reached the client in full with status 200 is written to FILE, one a line,
// so the ledger can be checked request by request. With --trace FILE
// (latency mode), each measured request's start offset and latency are
// written to FILE, to match slow requests with events such as fsyncs.
// --key sets the credential sent in X-Api-Key (a virtual key, tm-..., for
// the gateway's key and limit paths; bench/limits.sh).
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// HeaderRequestID is the response header the gateway adds to every call.
const HeaderRequestID = "X-Tokenmeter-Request-Id"

type config struct {
	mode    string
	target  string
	label   string
	n       int
	warmup  int
	c       int
	d       time.Duration
	stream  bool
	output  int
	delay   time.Duration
	timeout time.Duration
	ids     string
	trace   string
	key     string
	rep     int
	pids    map[string]int
}

// result is the JSON line; fields that do not apply to a mode are omitted.
type result struct {
	Mode       string  `json:"mode"`
	Label      string  `json:"label,omitempty"`
	Rep        int     `json:"rep,omitempty"`
	Target     string  `json:"target"`
	Stream     bool    `json:"stream"`
	Conns      int     `json:"conns"`
	Warmup     int64   `json:"warmup"` // warm-up requests sent (all answered 200), not measured
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	Served     int64   `json:"served"`
	ServedFull int64   `json:"served_full"`
	Seconds    float64 `json:"seconds"`
	RPS        float64 `json:"rps,omitempty"`
	P50us      float64 `json:"p50_us,omitempty"`
	P90us      float64 `json:"p90_us,omitempty"`
	P99us      float64 `json:"p99_us,omitempty"`
	MaxUs      float64 `json:"max_us,omitempty"`
	Open       int64   `json:"open,omitempty"`
	FirstEvent int64   `json:"first_event,omitempty"`
	// CPU use during the measured phase, in seconds: the load generator's
	// own, each process named in --pids, and the whole machine (busy and
	// total, summed over all CPUs). OtherLoad is the fraction of the machine
	// used by processes outside the benchmark (other work on a shared host).
	CPUSeconds   float64            `json:"cpu_s"`
	ProcCPU      map[string]float64 `json:"proc_cpu_s,omitempty"`
	MachineBusy  float64            `json:"machine_busy_s"`
	MachineTotal float64            `json:"machine_total_s"`
	OtherLoad    float64            `json:"other_load"`
	ErrorSample  string             `json:"error_sample,omitempty"`
}

func main() {
	var cfg config
	flag.StringVar(&cfg.mode, "mode", "latency", "latency, throughput, streams or body")
	flag.StringVar(&cfg.target, "target", "http://127.0.0.1:8787/anthropic", "base `URL` including the route prefix; /v1/messages is appended")
	flag.StringVar(&cfg.label, "label", "", "name of the target in the output")
	flag.IntVar(&cfg.rep, "rep", 0, "repetition number, copied to the output")
	flag.IntVar(&cfg.n, "n", 2000, "latency: measured requests")
	flag.IntVar(&cfg.warmup, "warmup", 200, "latency and throughput: warm-up requests (not measured)")
	flag.IntVar(&cfg.c, "c", 64, "throughput and streams: concurrent connections")
	flag.DurationVar(&cfg.d, "d", 10*time.Second, "throughput: test duration; streams: how long streams are held open")
	flag.BoolVar(&cfg.stream, "stream", false, "ask for SSE streaming responses")
	flag.IntVar(&cfg.output, "output", 12, "output tokens (reply words) the upstream is asked for")
	flag.DurationVar(&cfg.delay, "delay", 0, "upstream pause between stream events (streams mode defaults to 1s)")
	flag.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "per-request timeout (latency and throughput)")
	flag.StringVar(&cfg.ids, "ids", "", "write gateway request ids of complete 200 responses to this `file`")
	flag.StringVar(&cfg.key, "key", "sk-ant-bench-not-a-real-key", "credential sent in X-Api-Key, e.g. a virtual key (tm-...)")
	flag.StringVar(&cfg.trace, "trace", "", "latency: write one line per measured request, start offset and latency in µs, to this `file`")
	pids := flag.String("pids", "", "`name=PID,...` of server processes whose CPU time to report (Linux /proc)")
	flag.Parse()
	var err error
	if cfg.pids, err = parsePIDs(*pids); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run(cfg config) error {
	if cfg.c < 1 || cfg.n < 1 || cfg.d <= 0 {
		return errors.New("--c, --n and --d must be positive")
	}
	var (
		res result
		err error
	)
	switch cfg.mode {
	case "latency":
		res, err = latency(cfg)
	case "throughput":
		res, err = throughput(cfg)
	case "streams":
		if cfg.delay == 0 {
			cfg.delay = time.Second
		}
		res, err = streams(cfg)
	case "body":
		_, err = os.Stdout.Write(requestBody(cfg.stream))
		return err
	default:
		return fmt.Errorf("unknown --mode %q: want latency, throughput, streams or body", cfg.mode)
	}
	if err != nil {
		return err
	}
	res.Mode, res.Label, res.Rep, res.Target, res.Stream = cfg.mode, cfg.label, cfg.rep, cfg.target, cfg.stream
	line, _ := json.Marshal(res)
	fmt.Println(string(line))
	fmt.Fprintln(os.Stderr, human(res))
	return nil
}

func human(r result) string {
	name := r.Label
	if name == "" {
		name = r.Target
	}
	switch r.Mode {
	case "latency":
		return fmt.Sprintf("%-22s latency  n=%d  p50 %.0fµs  p90 %.0fµs  p99 %.0fµs  max %.0fµs  errors %d",
			name, r.Requests, r.P50us, r.P90us, r.P99us, r.MaxUs, r.Errors)
	case "throughput":
		return fmt.Sprintf("%-22s throughput c=%d  %.0f req/s  p50 %.0fµs  p99 %.0fµs  requests %d  errors %d  served %d (full %d)",
			name, r.Conns, r.RPS, r.P50us, r.P99us, r.Requests, r.Errors, r.Served, r.ServedFull)
	default:
		return fmt.Sprintf("%-22s streams c=%d  open %d  first event %d  errors %d  held %.1fs",
			name, r.Conns, r.Open, r.FirstEvent, r.Errors, r.Seconds)
	}
}

// newClient returns a keep-alive client that opens at most conns
// connections and keeps them all idle between requests.
func newClient(conns int, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
			WriteBufferSize:     16 << 10,
			ReadBufferSize:      16 << 10,
		},
	}
}

// requestBody is a realistic Claude Code style Messages request of about
// 1 KB: a system prompt, a short conversation and a tool definition.
func requestBody(stream bool) []byte {
	body := map[string]any{
		"model":      "claude-sonnet-4-5-20250929",
		"max_tokens": 1024,
		"stream":     stream,
		"system":     "You are a careful senior Go engineer. Answer briefly, show code only when it helps, and explain trade-offs in plain words. Never invent APIs; say when you are unsure.",
		"metadata":   map[string]string{"user_id": "user_bench_0001"},
		"messages": []map[string]any{
			{"role": "user", "content": "Our service writes usage events to SQLite in WAL mode. Under load we see p99 latency spikes of a few milliseconds. Which knobs matter: synchronous, wal_autocheckpoint, busy_timeout, or the batch size of our group commit?"},
			{"role": "assistant", "content": "Mostly synchronous and the checkpoint: with synchronous=FULL every commit waits for an fsync of the WAL; with NORMAL only checkpoints do. Large batches amortise the fsync."},
			{"role": "user", "content": "Show how to measure the checkpoint's share of the p99, and whether a 2 ms commit window helps at 5,000 requests per second."},
		},
		"tools": []map[string]any{{
			"name":        "run_benchmark",
			"description": "Run a Go benchmark and return its output.",
			"input_schema": map[string]any{
				"type":       "object",
				"properties": map[string]any{"package": map[string]string{"type": "string"}, "bench": map[string]string{"type": "string"}},
				"required":   []string{"package"},
			},
		}},
	}
	b, _ := json.Marshal(body)
	return b
}

// requester builds identical requests for one configuration.
type requester struct {
	url       string
	body      []byte
	directive string
	key       string
}

func newRequester(cfg config, delay time.Duration) *requester {
	d := fmt.Sprintf("output=%d", cfg.output)
	if delay > 0 {
		d += " delay=" + delay.String()
	}
	return &requester{url: strings.TrimRight(cfg.target, "/") + "/v1/messages", body: requestBody(cfg.stream), directive: d, key: cfg.key}
}

func (q *requester) new(ctx context.Context) *http.Request {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, q.url, bytes.NewReader(q.body))
	if err != nil {
		panic(err) // the URL was checked by the first request; cannot fail later
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Anthropic-Version", "2023-06-01")
	req.Header.Set("X-Api-Key", q.key)
	req.Header.Set("X-Fake-Upstream", q.directive)
	return req
}

// outcome is one request's result.
type outcome struct {
	lat    time.Duration
	err    error
	served bool   // carried X-Tokenmeter-Request-Id
	id     string // the id, when served and complete with status 200
}

// do sends one request and reads the whole body.
func do(client *http.Client, q *requester, buf []byte) outcome {
	start := time.Now()
	resp, err := client.Do(q.new(context.Background()))
	if err != nil {
		return outcome{lat: time.Since(start), err: err}
	}
	id := resp.Header.Get(HeaderRequestID)
	_, err = io.CopyBuffer(io.Discard, resp.Body, buf)
	resp.Body.Close()
	o := outcome{lat: time.Since(start), served: id != ""}
	switch {
	case err != nil:
		o.err = fmt.Errorf("read body: %w", err)
	case resp.StatusCode != http.StatusOK:
		o.err = fmt.Errorf("status %d", resp.StatusCode)
	case o.served:
		o.id = id
	}
	return o
}

func latency(cfg config) (result, error) {
	client := newClient(1, cfg.timeout)
	q := newRequester(cfg, 0)
	buf := make([]byte, 32<<10)
	for range cfg.warmup {
		if o := do(client, q, buf); o.err != nil {
			return result{}, fmt.Errorf("warm-up request to %s: %w", q.url, o.err)
		}
	}
	lats := make([]time.Duration, 0, cfg.n)
	var res result
	var ids []string
	var trace []byte
	cpu0 := sampleCPU(cfg.pids)
	start := time.Now()
	if cfg.trace != "" {
		trace = fmt.Appendf(trace, "# start %d (Unix µs); then per request: start offset µs, latency µs\n", start.UnixMicro())
	}
	for range cfg.n {
		o := do(client, q, buf)
		res.Requests++
		res.count(o, &ids)
		if o.err == nil {
			lats = append(lats, o.lat)
		}
		if cfg.trace != "" {
			trace = fmt.Appendf(trace, "%d %d\n", (time.Since(start) - o.lat).Microseconds(), o.lat.Microseconds())
		}
	}
	res.Seconds = time.Since(start).Seconds()
	res.cpu(cpu0, sampleCPU(cfg.pids))
	res.Conns, res.Warmup = 1, int64(cfg.warmup)
	res.percentiles(lats)
	if cfg.trace != "" {
		if err := os.WriteFile(cfg.trace, trace, 0o644); err != nil {
			return res, err
		}
	}
	return res, writeIDs(cfg.ids, ids)
}

func (r *result) count(o outcome, ids *[]string) {
	if o.served {
		r.Served++
	}
	if o.id != "" {
		r.ServedFull++
		*ids = append(*ids, o.id)
	}
	if o.err != nil {
		r.Errors++
		if r.ErrorSample == "" {
			r.ErrorSample = o.err.Error()
		}
	}
}

func (r *result) percentiles(lats []time.Duration) {
	if len(lats) == 0 {
		return
	}
	slices.Sort(lats)
	at := func(p float64) float64 {
		i := int(p*float64(len(lats))+0.5) - 1
		i = max(0, min(i, len(lats)-1))
		return float64(lats[i]) / float64(time.Microsecond)
	}
	r.P50us, r.P90us, r.P99us = at(0.50), at(0.90), at(0.99)
	r.MaxUs = float64(lats[len(lats)-1]) / float64(time.Microsecond)
}

func throughput(cfg config) (result, error) {
	client := newClient(cfg.c, cfg.timeout)
	q := newRequester(cfg, 0)
	// Warm up: open the connections and check the target answers.
	var wg sync.WaitGroup
	var werr atomic.Pointer[error]
	per := max(1, cfg.warmup/cfg.c)
	for range cfg.c {
		wg.Go(func() {
			buf := make([]byte, 32<<10)
			for range per {
				if o := do(client, q, buf); o.err != nil {
					werr.Store(&o.err)
					return
				}
			}
		})
	}
	wg.Wait()
	if p := werr.Load(); p != nil {
		return result{}, fmt.Errorf("warm-up request to %s: %w", q.url, *p)
	}

	type worker struct {
		lats []time.Duration
		ids  []string
		res  result
	}
	workers := make([]*worker, cfg.c)
	cpu0 := sampleCPU(cfg.pids)
	deadline := time.Now().Add(cfg.d)
	start := time.Now()
	for i := range workers {
		w := &worker{lats: make([]time.Duration, 0, 4096)}
		workers[i] = w
		wg.Go(func() {
			buf := make([]byte, 32<<10)
			for time.Now().Before(deadline) {
				o := do(client, q, buf)
				w.res.Requests++
				w.res.count(o, &w.ids)
				if o.err == nil {
					w.lats = append(w.lats, o.lat)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu1 := sampleCPU(cfg.pids)

	var res result
	var lats []time.Duration
	var ids []string
	for _, w := range workers {
		res.Requests += w.res.Requests
		res.Errors += w.res.Errors
		res.Served += w.res.Served
		res.ServedFull += w.res.ServedFull
		if res.ErrorSample == "" {
			res.ErrorSample = w.res.ErrorSample
		}
		lats = append(lats, w.lats...)
		ids = append(ids, w.ids...)
	}
	res.Conns, res.Warmup = cfg.c, int64(per*cfg.c)
	res.cpu(cpu0, cpu1)
	res.Seconds = elapsed.Seconds()
	res.RPS = float64(res.Requests-res.Errors) / elapsed.Seconds()
	res.percentiles(lats)
	return res, writeIDs(cfg.ids, ids)
}

// streams opens cfg.c streaming requests at once, reads their events as they
// come for cfg.d, then cancels them all.
func streams(cfg config) (result, error) {
	cfg.stream = true
	client := newClient(cfg.c, 0) // no overall timeout: streams are cancelled by ctx
	q := newRequester(cfg, cfg.delay)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var open, first, errs, served atomic.Int64
	var sample atomic.Pointer[string]
	fail := func(err error) {
		errs.Add(1)
		s := err.Error()
		sample.CompareAndSwap(nil, &s)
	}
	var wg sync.WaitGroup
	cpu0 := sampleCPU(cfg.pids)
	start := time.Now()
	for range cfg.c {
		wg.Go(func() {
			resp, err := client.Do(q.new(ctx))
			if err != nil {
				if ctx.Err() == nil {
					fail(err)
				}
				return
			}
			defer resp.Body.Close()
			if resp.Header.Get(HeaderRequestID) != "" {
				served.Add(1)
			}
			if resp.StatusCode != http.StatusOK {
				fail(fmt.Errorf("status %d", resp.StatusCode))
				return
			}
			open.Add(1)
			defer open.Add(-1)
			sc := bufio.NewScanner(resp.Body)
			seen := false
			for sc.Scan() {
				if !seen && strings.HasPrefix(sc.Text(), "data:") {
					seen = true
					first.Add(1)
				}
			}
			if err := sc.Err(); err != nil && ctx.Err() == nil {
				fail(fmt.Errorf("read stream: %w", err))
			}
		})
	}
	time.Sleep(cfg.d)
	res := result{Conns: cfg.c, Requests: int64(cfg.c), Open: open.Load(), FirstEvent: first.Load(), Served: served.Load()}
	res.Seconds = time.Since(start).Seconds()
	res.cpu(cpu0, sampleCPU(cfg.pids))
	cancel()
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		fail(errors.New("streams did not end within 10s of cancelling"))
	}
	res.Errors = errs.Load()
	if p := sample.Load(); p != nil {
		res.ErrorSample = *p
	}
	return res, nil
}

func parsePIDs(s string) (map[string]int, error) {
	m := map[string]int{}
	for _, kv := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' }) {
		name, v, ok := strings.Cut(kv, "=")
		pid, err := strconv.Atoi(v)
		if !ok || err != nil || pid <= 0 {
			return nil, fmt.Errorf("invalid --pids entry %q: want name=PID", kv)
		}
		m[name] = pid
	}
	return m, nil
}

// clockTicks is USER_HZ, the unit of /proc CPU times (100 on every Linux
// architecture Go supports).
const clockTicks = 100

// cpuSample is a reading of the CPU counters.
type cpuSample struct {
	self        float64            // this process, seconds
	procs       map[string]float64 // watched processes, seconds
	busy, total float64            // whole machine, seconds summed over CPUs
}

func sampleCPU(pids map[string]int) cpuSample {
	s := cpuSample{procs: map[string]float64{}}
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	for name, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// Fields after the parenthesised command name; utime and stime are
		// the 14th and 15th fields of the whole line.
		_, rest, _ := strings.Cut(string(b), ") ")
		f := strings.Fields(rest)
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseFloat(f[11], 64)
		st, _ := strconv.ParseFloat(f[12], 64)
		s.procs[name] = (ut + st) / clockTicks
	}
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		// cpu user nice system idle iowait irq softirq steal ...
		for i := 1; i < len(f) && i <= 8; i++ {
			v, _ := strconv.ParseFloat(f[i], 64)
			s.total += v / clockTicks
			if i != 4 && i != 5 {
				s.busy += v / clockTicks
			}
		}
	}
	return s
}

// cpu sets the CPU fields from two samples.
func (r *result) cpu(a, b cpuSample) {
	r.CPUSeconds = b.self - a.self
	r.ProcCPU = map[string]float64{}
	ours := r.CPUSeconds
	for name, v := range b.procs {
		if v0, ok := a.procs[name]; ok {
			r.ProcCPU[name] = v - v0
			ours += v - v0
		}
	}
	r.MachineBusy, r.MachineTotal = b.busy-a.busy, b.total-a.total
	if r.MachineTotal > 0 {
		r.OtherLoad = max(0, (r.MachineBusy-ours)/r.MachineTotal)
	}
}

func writeIDs(path string, ids []string) error {
	if path == "" {
		return nil
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, id := range ids {
		w.WriteString(id)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
