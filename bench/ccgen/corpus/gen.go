package corpus

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/tokenmeter/tokenmeter/internal/pricing"
)

// Models, main-session weights (per mille) and the one subagents often use.
var models = []struct {
	name string
	w    int
}{
	{"claude-sonnet-4-5-20250929", 580},
	{"claude-opus-4-5-20251101", 160},
	{"claude-opus-4-1-20250805", 90},
	{"claude-sonnet-4-20250514", 90},
	{"claude-haiku-4-5-20251001", 80},
}

const haiku = "claude-haiku-4-5-20251001"

// Claude Code versions: era 0 (1.0.x) writes subagents inline, era 1
// (2.0.x) to flat agent-<8hex>.jsonl files, era 2 (2.1.x) to nested
// <session>/subagents/ files with agent_progress copies in the parent.
// partial versions write output_tokens 1..9 on all lines of a response but
// the last.
var versions = []struct {
	v       string
	era     int
	partial bool
	w       int
}{
	{"1.0.98", 0, false, 4},
	{"2.0.14", 1, false, 8},
	{"2.0.37", 1, true, 12},
	{"2.0.76", 1, true, 16},
	{"2.1.3", 2, false, 18},
	{"2.1.19", 2, true, 20},
	{"2.1.42", 2, true, 22},
}

// Cache lifetimes of a session's writes.
const (
	ttl5m = iota
	ttl1h
	ttlMixed
)

// File kinds.
const (
	kindSession = iota
	kindFlat
	kindNested
	kindAside
	kindOther
)

const (
	second = int64(1000)
	minute = 60 * second
	hour   = 60 * minute
)

type project struct {
	cwd   string
	dir   string // absolute path of projects/<encoded cwd>
	paths []string
	used  bool
}

// out is one file being written.
type out struct {
	f      *os.File
	w      *bufio.Writer
	spaced bool
	kind   int
	lines  int64
	usage  int64 // usage lines
	bytes  int64
}

type gen struct {
	o          Options
	r          *rand.Rand
	id         ids
	p          *pool
	root       string
	start, end int64 // the corpus's time window in Unix ms, [start, end)
	acc        *accumulator
	t          Truth
	usageLines int64
	seen       struct{ longCtx, web, oneHour bool }
	err        error
	e, e2      enc
	projects   []*project
	cum        []int // cumulative project weights
	free       []*bufio.Writer
	next       int64 // line count of the next progress report
	began      time.Time
}

func newGen(dir string, o Options) *gen {
	r := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	end := o.End.UTC()
	last := time.Date(end.Year(), end.Month(), end.Day(), 0, 0, 0, 0, time.UTC)
	g := &gen{
		o:     o,
		r:     r,
		id:    ids{r: r},
		root:  filepath.Join(dir, "projects"),
		start: last.AddDate(0, 0, 1-o.Days).UnixMilli(),
		end:   last.AddDate(0, 0, 1).UnixMilli(),
		acc:   newAccumulator(),
		began: time.Now(),
	}
	g.t.Seed = o.Seed
	g.p = newPool(r, 4<<20, 1<<20)
	g.e.b = make([]byte, 0, 1<<16)
	g.e2.b = make([]byte, 0, 1<<16)
	g.makeProjects()
	return g
}

var (
	cwdUsers = []string{"dana", "sam.lee", "kim", "alex_m", "ci"}
	cwdNames = []string{
		"tokenmeter", "api_server", "web-frontend", "infra", "dotfiles", "ml_pipeline", "billing.svc",
		"docs-site", "mobile-app", "cli", "parser", "payments", "search-api", "data.etl", "auth",
		"game_engine", "blog", "k8s-config", "rust-tools", "notebook", "scraper", "chat-bot",
		"landing.page", "sdk-go", "terraform", "monorepo", "analytics", "e2e-tests", "design-system",
		"iot_hub", "compiler", "crm", "wiki", "ops-scripts", "lambda_fns", "quant", "video.encoder",
		"portfolio", "sandbox",
	}
	srcFiles = []string{
		"main.go", "server.go", "handler_test.go", "README.md", "go.mod", "Makefile", "index.ts",
		"App.tsx", "utils.py", "models.py", "schema.sql", "Dockerfile", "config.yaml", "lib.rs",
		"package.json", "api/routes.ts", "internal/store/store.go", "cmd/root.go", "docs/design.md",
	}
)

// encodeCwd turns a working directory into its projects/ folder name: every
// character that is not a letter or digit becomes '-'.
func encodeCwd(cwd string) string {
	b := []byte(cwd)
	for i, c := range b {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			b[i] = '-'
		}
	}
	return string(b)
}

func (g *gen) makeProjects() {
	r := g.r
	n := 20 + r.IntN(21)
	names := append([]string(nil), cwdNames...)
	r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	var cwds []string
	for i := 0; len(cwds) < n; i++ {
		name := names[i%len(names)]
		if i >= len(names) {
			name += "-" + strconv.Itoa(i)
		}
		u := cwdUsers[r.IntN(len(cwdUsers))]
		switch r.IntN(4) {
		case 0:
			cwds = append(cwds, "/Users/"+u+"/code/"+name)
		case 1:
			cwds = append(cwds, "/workspaces/"+name)
		default:
			cwds = append(cwds, "/home/"+u+"/src/"+name)
		}
	}
	// A subfolder of a project is a project of its own, and two working
	// directories can share a folder: /home/kim/src/my.app and
	// /home/kim/src/my-app both become -home-kim-src-my-app.
	cwds[n-1] = cwds[0] + "/cmd/server"
	cwds[n-2] = "/home/kim/src/my.app"
	cwds[n-3] = "/home/kim/src/my-app"
	g.projects = make([]*project, n)
	total := 0
	for i, cwd := range cwds {
		p := &project{cwd: cwd, dir: filepath.Join(g.root, encodeCwd(cwd))}
		for range 24 {
			p.paths = append(p.paths, cwd+"/"+srcFiles[r.IntN(len(srcFiles))])
		}
		g.projects[i] = p
		total += int(1000 / math.Pow(float64(i+1), 0.9))
		g.cum = append(g.cum, total)
	}
}

func (g *gen) pickProject() *project {
	x := g.r.IntN(g.cum[len(g.cum)-1])
	for i, c := range g.cum {
		if x < c {
			return g.projects[i]
		}
	}
	return g.projects[0]
}

// lognorm returns median × e^(sigma·N(0,1)) clamped to [lo, hi].
func lognorm(r *rand.Rand, median, sigma float64, lo, hi int) int {
	v := median * math.Exp(sigma*r.NormFloat64())
	return int(min(max(v, float64(lo)), float64(hi)))
}

func (g *gen) run() (*Truth, error) {
	if err := os.MkdirAll(g.root, 0o755); err != nil {
		return nil, err
	}
	g.next = 100_000
	target := int64(g.o.Lines)
	// A few marathon sessions: at 1M lines, three files of 50-75 MB.
	type marathon struct{ at, lines int64 }
	var ms []marathon
	switch {
	case target >= 300_000:
		ms = []marathon{{target / 10, target * 9 / 100}, {target * 4 / 10, target * 6 / 100}, {target * 7 / 10, target * 5 / 100}}
	case target >= 20_000:
		ms = []marathon{{target * 3 / 10, target * 8 / 100}}
	}
	for g.t.Lines < target && g.err == nil {
		m := int64(0)
		if len(ms) > 0 && g.t.Lines >= ms[0].at {
			m, ms = ms[0].lines, ms[1:]
		}
		g.chain(int(m))
	}
	if g.err != nil {
		return nil, g.err
	}
	for _, p := range g.projects {
		if p.used {
			g.t.Counts.Projects++
		}
	}
	tbl := pricing.Default()
	if err := g.acc.finish(&g.t, tbl); err != nil {
		return nil, err
	}
	g.t.Counts.DuplicateLines = g.usageLines - g.t.Totals.Requests
	g.progress()
	return &g.t, nil
}

func (g *gen) progress() {
	if g.o.Progress == nil {
		return
	}
	fmt.Fprintf(g.o.Progress, "ccgen: %d lines, %d files, %.1f MB, %.1fs\n",
		g.t.Lines, g.t.Files, float64(g.t.Bytes)/1e6, time.Since(g.began).Seconds())
}

func (g *gen) create(p *project, path string, spaced bool, kind int) *out {
	o := &out{spaced: spaced, kind: kind}
	var w *bufio.Writer
	if n := len(g.free); n > 0 {
		w, g.free = g.free[n-1], g.free[:n-1]
	} else {
		w = bufio.NewWriterSize(nil, 256<<10)
	}
	o.w = w
	w.Reset(io.Discard)
	if g.err != nil {
		return o
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		g.err = err
		return o
	}
	f, err := os.Create(path)
	if err != nil {
		g.err = err
		return o
	}
	o.f = f
	w.Reset(f)
	p.used = true
	g.t.Files++
	c := &g.t.Counts
	switch kind {
	case kindSession:
		c.Sessions++
	case kindFlat:
		c.FlatAgentFiles++
	case kindNested:
		c.NestedAgentFiles++
	case kindAside:
		c.NestedAgentFiles++
		c.AsideFiles++
	}
	return o
}

func (g *gen) close(o *out) {
	if err := o.w.Flush(); err != nil && g.err == nil {
		g.err = err
	}
	o.w.Reset(io.Discard)
	g.free = append(g.free, o.w)
	if o.f != nil {
		if err := o.f.Close(); err != nil && g.err == nil {
			g.err = err
		}
	}
	switch {
	case o.bytes == 0:
		g.t.Counts.EmptyFiles++
	case o.usage == 0:
		g.t.Counts.NoUsageFiles++
	}
}

// emit writes b and a newline to o.
func (g *gen) emit(o *out, b []byte) {
	o.w.Write(b)
	o.w.WriteByte('\n')
	o.lines++
	o.bytes += int64(len(b)) + 1
	g.t.Lines++
	g.t.Bytes += int64(len(b)) + 1
	if g.t.Lines >= g.next {
		g.next += 100_000
		g.progress()
	}
}

// emitCut writes b without a newline: the cut last line of a file.
func (g *gen) emitCut(o *out, b []byte) {
	o.w.Write(b)
	o.lines++
	o.bytes += int64(len(b))
	g.t.Lines++
	g.t.Bytes += int64(len(b))
}

// observe counts a, a valid assistant line, towards the truth.
func (g *gen) observe(a *asst, spaced bool) {
	if !usageLine(a) {
		return
	}
	g.usageLines++
	c := &g.t.Counts
	if spaced {
		c.SpacedLines++
	}
	if a.reqID == "" {
		c.NoRequestIDLines++
	}
	if a.u.prompt() > 200_000 {
		g.seen.longCtx = true
	}
	g.seen.web = g.seen.web || a.u.ws > 0
	g.seen.oneHour = g.seen.oneHour || a.u.cw1 > 0
	g.acc.observe(a)
}

// plan is what a session will be like.
type plan struct {
	p        *project
	version  string
	era      int
	partial  bool
	model    string
	branch   string
	spaced   bool
	noReq    bool
	longCtx  bool
	truncate bool
	ttl      int
	target   int
	start    int64
	marathon bool
	// Kinds the corpus still lacks, forced into this session.
	forceTask, forceBtw, forceWeb, forceAPIErr, forceZero, forceMalformed, forceLong bool
}

func (g *gen) plan(p *project, marathon int) *plan {
	r, c := g.r, &g.t.Counts
	s := &plan{p: p, marathon: marathon > 0}
	era := -1
	switch {
	case c.InlineSidechainLines == 0:
		era, s.forceTask = 0, true
	case c.FlatAgentFiles == 0:
		era, s.forceTask = 1, true
	case c.NestedAgentFiles == 0 || c.ProgressCopies == 0:
		era, s.forceTask = 2, true
	case c.BtwReplays == 0:
		era, s.forceBtw = 2, true
	}
	partial := -1
	switch {
	case c.SplitSameUsage == 0:
		partial = 0
	case c.SplitPartialOutput == 0 && era != 0:
		partial = 1
	}
	total := 0
	for _, v := range versions {
		total += v.w
	}
	for {
		x := r.IntN(total)
		for _, v := range versions {
			if x -= v.w; x < 0 {
				s.version, s.era, s.partial = v.v, v.era, v.partial
				break
			}
		}
		if (era < 0 || s.era == era) && (partial < 0 || s.partial == (partial == 1)) {
			break
		}
	}
	x := r.IntN(1000)
	for _, m := range models {
		if x -= m.w; x < 0 {
			s.model = m.name
			break
		}
	}
	switch x := r.IntN(20); {
	case x < 9:
		s.branch = "main"
	case x < 11:
		s.branch = "master"
	case x < 15:
		s.branch = "feat/" + words[r.IntN(60)]
	case x < 19:
		s.branch = "fix/" + words[r.IntN(60)]
	default:
		s.branch = "" // not a git repository
	}
	s.spaced = r.IntN(50) == 0 || c.SpacedLines == 0
	s.noReq = r.IntN(33) == 0 || (c.NoRequestIDLines == 0 && era != 2)
	if s.noReq && s.era == 2 {
		s.forceBtw = false // a /btw replay differs from its parent by requestId
	}
	switch {
	case s.era == 0:
		s.ttl = ttl5m
	case r.IntN(10) < 5:
		s.ttl = ttl1h
	case r.IntN(10) < 4:
		s.ttl = ttlMixed
	default:
		s.ttl = ttl5m
	}
	if !g.seen.oneHour && s.era > 0 {
		s.ttl = ttl1h
	}
	sonnet := s.model == models[0].name || s.model == models[3].name
	s.longCtx = sonnet && r.IntN(25) == 0
	if !g.seen.longCtx {
		s.model, s.longCtx, s.forceLong = models[0].name, true, true
	}
	s.forceWeb = !g.seen.web
	s.forceAPIErr = c.APIErrorLines == 0 || c.UsageLimitLines == 0
	s.forceZero = c.ZeroUsageLines == 0
	s.forceMalformed = c.MalformedLines == 0
	s.truncate = r.IntN(80) == 0 || c.TruncatedTails == 0
	days := int64(g.end-g.start) / dayMillis
	if marathon > 0 {
		// Spacing is a property of a few small files; a 100 MB spaced file
		// would turn "2% of files" into 10% of the lines.
		s.spaced = c.SpacedLines == 0
		s.target = marathon
		s.start = g.start + r.Int64N(max(min(20, days/3), 1)*dayMillis)
		if s.model == haiku {
			s.model = models[0].name
		}
		return s
	}
	s.target = lognorm(r, 40, 1.25, 2, 9000)
	if left := int(int64(g.o.Lines) - g.t.Lines); s.target > left {
		s.target = max(left, 2)
	}
	s.start = g.start + r.Int64N(days)*dayMillis
	if r.IntN(4) > 0 {
		s.start += 7*hour + r.Int64N(14*hour)
	} else {
		s.start += r.Int64N(24 * hour)
	}
	return s
}

// chain writes a session, sometimes an empty or a usage-free file before it,
// and sometimes one or two resumed sessions after it.
func (g *gen) chain(marathon int) {
	r, c := g.r, &g.t.Counts
	p := g.pickProject()
	if r.IntN(70) == 0 || c.EmptyFiles == 0 {
		g.close(g.create(p, filepath.Join(p.dir, g.id.uuid()+".jsonl"), false, kindOther))
	}
	if r.IntN(45) == 0 || c.NoUsageFiles == 0 {
		g.noUsageFile(p)
	}
	s := g.plan(p, marathon)
	cv := g.session(s, nil)
	n := 0
	if r.IntN(9) == 0 || c.ResumeCopies == 0 {
		n = 1
		if r.IntN(5) == 0 {
			n = 2
		}
	}
	for i := 0; i < n && !cv.done && len(cv.tail) > 0 && g.err == nil; i++ {
		s2 := *s
		s2.marathon = false
		s2.forceTask, s2.forceBtw, s2.forceWeb, s2.forceAPIErr, s2.forceZero, s2.forceMalformed, s2.forceLong = false, false, false, false, false, false, false
		s2.truncate = r.IntN(80) == 0
		s2.target = lognorm(r, 30, 1.0, 2, 3000)
		s2.start = cv.now + 2*minute + r.Int64N(30*hour)
		if s2.start >= g.end-hour {
			break
		}
		cv = g.session(&s2, cv)
	}
}

// noUsageFile writes a session file without a single usage line: summaries
// only, a session in which nothing was asked, or one stopped at once by the
// usage limit.
func (g *gen) noUsageFile(p *project) {
	r := g.r
	sid := g.id.uuid()
	o := g.create(p, filepath.Join(p.dir, sid+".jsonl"), false, kindOther)
	cv := &convo{g: g, o: o, plan: &plan{p: p}, env: env{cwd: p.cwd, session: sid, version: "2.0.76", branch: "main"}}
	cv.now = g.start + r.Int64N(g.end-g.start-2*hour)
	switch r.IntN(3) {
	case 0:
		for range 1 + r.IntN(5) {
			cv.summary()
		}
	case 1:
		cv.localCommand("/config")
		cv.snapshot()
		cv.localCommand("/exit")
	default:
		cv.prompt(g.p.slice(r, 40+r.IntN(200)))
		cv.now += 2 * second
		cv.apiError(true)
	}
	g.close(o)
}

// session writes one session file (and its subagent files) following s,
// starting with copies of prev's last responses when prev is not nil.
func (g *gen) session(s *plan, prev *convo) *convo {
	r := g.r
	sid := g.id.uuid()
	o := g.create(s.p, filepath.Join(s.p.dir, sid+".jsonl"), s.spaced, kindSession)
	cv := &convo{
		g: g, o: o, plan: s,
		env:      env{cwd: s.p.cwd, session: sid, version: s.version, branch: s.branch},
		model:    s.model,
		era:      s.era,
		variantB: s.partial,
		noReq:    s.noReq,
		noSplit:  s.era == 0,
		ttl:      s.ttl,
		ctx:      14_000 + r.IntN(9_000),
		now:      s.start,
		spawn:    true,
		keepTail: true,
	}
	cv.compactAt = 150_000 + r.IntN(25_000)
	if s.longCtx {
		cv.compactAt = 320_000 + r.IntN(400_000)
	}
	switch {
	case s.forceLong:
		cv.ctx = 201_000 + r.IntN(20_000)
	case s.longCtx:
		// A long-context session (1M-token beta) picks up a large codebase.
		cv.ctx = 150_000 + r.IntN(120_000)
	}
	if r.IntN(7) == 0 {
		for range 1 + r.IntN(3) {
			cv.summary()
		}
	}
	if prev != nil {
		cv.copyTail(prev)
	}
	for !cv.done && o.lines < int64(s.target) && g.err == nil {
		cv.turn()
	}
	if s.truncate {
		cv.truncatedTail()
	}
	g.close(o)
	return cv
}

// convo is one conversation being written: a main session, a subagent or a
// /btw side question.
type convo struct {
	g        *gen
	o        *out
	plan     *plan
	env      env // the envelope of the next line, less parent, uuid and ts
	model    string
	era      int
	variantB bool
	noReq    bool
	noSplit  bool
	ttl      int
	// ctx is the prompt size of the next request; cached how much of it the
	// cache holds, written or read by the last request at lastCall.
	ctx, cached int
	lastCall    int64
	compactAt   int
	now         int64
	last        string // uuid of the last line, the next line's parentUuid
	done        bool   // the corpus's time window is over
	spawn       bool   // may start subagents and side questions
	// parent, for a 2.1.x subagent, receives agent_progress copies of its
	// lines; parentTool is the Task call's tool_use id.
	parent     *convo
	parentTool string
	lastResp   []asst
	keepTail   bool
	tail       [][]item // the last responses, for a resumed session's copies
	bbuf       []block
}

const tailMax = 8

func (c *convo) nextEnv() env {
	e := c.env
	e.parent = c.last
	e.uuid = c.g.id.uuid()
	e.ts = c.now
	return e
}

func (c *convo) writeAsst(a *asst) {
	g := c.g
	g.e.reset(g.e.b, c.o.spaced)
	g.e.assistant(a)
	g.emit(c.o, g.e.b)
	cnt := &g.t.Counts
	cnt.AssistantLines++
	c.last = a.uuid
	if a.sidechain && c.o.kind == kindSession {
		cnt.InlineSidechainLines++
	}
	switch {
	case a.apiErr != "":
		cnt.APIErrorLines++
		if len(a.apiErr) > 29 && a.apiErr[:29] == "Claude AI usage limit reached" {
			cnt.UsageLimitLines++
		}
		return
	case a.u.total() == 0:
		cnt.ZeroUsageLines++
		return
	}
	c.o.usage++
	g.observe(a, c.o.spaced)
	c.lastResp = append(c.lastResp, *a)
	if c.keepTail && len(c.tail) > 0 {
		t := &c.tail[len(c.tail)-1]
		*t = append(*t, item{isAsst: true, a: *a})
	}
	if c.parent != nil && g.r.IntN(10) < 6 {
		c.parent.progressCopy(a, c.parentTool)
	}
}

func (c *convo) writeUser(u *user, keep bool) {
	g := c.g
	g.e.reset(g.e.b, c.o.spaced)
	g.e.userLine(u)
	g.emit(c.o, g.e.b)
	c.last = u.uuid
	if u.sidechain && c.o.kind == kindSession {
		g.t.Counts.InlineSidechainLines++
	}
	if keep && c.keepTail && len(c.tail) > 0 {
		t := &c.tail[len(c.tail)-1]
		*t = append(*t, item{u: *u})
	}
}

// progressCopy writes an agent_progress line wrapping a, a line of a
// subagent of c.
func (c *convo) progressCopy(a *asst, toolID string) {
	g := c.g
	ts := a.ts + g.r.Int64N(40)
	if day(ts) != day(a.ts) {
		ts = a.ts
	}
	g.e2.reset(g.e2.b, c.o.spaced)
	g.e2.assistant(a)
	e := &g.e
	e.reset(e.b, c.o.spaced)
	e.obj()
	v := c.env
	v.parent = c.last
	e.envelope(&v)
	e.kstr("type", "progress")
	e.key("data")
	e.obj()
	e.key("message")
	e.raw(g.e2.b)
	e.key("normalizedMessages")
	e.arr()
	e.aend()
	e.kstr("type", "agent_progress")
	e.kstr("prompt", "")
	e.kstr("agentId", a.agent)
	e.end()
	e.kstr("toolUseID", "agent_"+a.msgID)
	e.kstr("parentToolUseID", toolID)
	e.kstr("uuid", g.id.uuid())
	e.key("timestamp")
	e.ts(ts)
	e.end()
	g.emit(c.o, e.b)
	g.t.Counts.ProgressCopies++
	c.o.usage++
	g.observe(a, c.o.spaced)
}

// copyTail writes prev's last responses again, as Claude Code does at the
// start of a resumed session: the same lines with, mostly, the new
// sessionId.
func (c *convo) copyTail(prev *convo) {
	g := c.g
	keepOld := g.r.IntN(4) == 0
	n := 1 + g.r.IntN(len(prev.tail))
	for _, grp := range prev.tail[len(prev.tail)-n:] {
		c.tail = append(c.tail, nil)
		for _, it := range grp {
			if it.isAsst {
				a := it.a
				if !keepOld {
					a.session = c.env.session
				}
				c.writeAsst(&a)
				g.t.Counts.ResumeCopies++
			} else {
				u := it.u
				if !keepOld {
					u.session = c.env.session
				}
				c.writeUser(&u, true)
			}
		}
	}
	c.lastResp = c.lastResp[:0]
	if len(c.tail) > tailMax {
		c.tail = c.tail[len(c.tail)-tailMax:]
	}
}

func (c *convo) summary() {
	g := c.g
	e := &g.e
	e.reset(e.b, c.o.spaced)
	e.obj()
	e.kstr("type", "summary")
	e.key("summary")
	e.strb(g.p.slice(g.r, 20+g.r.IntN(60)))
	e.kstr("leafUuid", g.id.uuid())
	e.end()
	g.emit(c.o, e.b)
}

func (c *convo) localCommand(cmd string) {
	g := c.g
	v := c.nextEnv()
	e := &g.e
	e.reset(e.b, c.o.spaced)
	e.obj()
	e.envelope(&v)
	e.kstr("type", "system")
	e.kstr("subtype", "local_command")
	e.kstr("content", "<command-name>"+cmd+"</command-name>\n<command-message>"+cmd[1:]+"</command-message>\n<command-args></command-args>")
	e.kstr("level", "info")
	e.key("timestamp")
	e.ts(v.ts)
	e.kstr("uuid", v.uuid)
	e.kbool("isMeta", false)
	e.end()
	g.emit(c.o, e.b)
	c.last = v.uuid
	c.now += 200 + g.r.Int64N(3000)
}

// snapshot writes a file-history-snapshot line; a few are hundreds of KB.
func (c *convo) snapshot() {
	g, r := c.g, c.g.r
	n := r.IntN(6)
	if r.IntN(300) == 0 {
		n = 300 + r.IntN(3500)
	}
	id := g.id.uuid()
	e := &g.e
	e.reset(e.b, c.o.spaced)
	e.obj()
	e.kstr("type", "file-history-snapshot")
	e.kstr("messageId", id)
	e.key("snapshot")
	e.obj()
	e.kstr("messageId", id)
	e.key("trackedFileBackups")
	e.obj()
	paths := c.plan.p.paths
	for i := range n {
		path := paths[i%len(paths)]
		if i >= len(paths) {
			path += "." + strconv.Itoa(i)
		}
		e.key(path)
		e.obj()
		v := int64(1 + r.IntN(9))
		e.kstr("backupFileName", g.id.hex(16)+"@v"+strconv.FormatInt(v, 10))
		e.kint("version", v)
		e.key("backupTime")
		e.ts(c.now - r.Int64N(hour))
		e.end()
	}
	e.end()
	e.key("timestamp")
	e.ts(c.now)
	e.end()
	e.kbool("isSnapshotUpdate", false)
	e.end()
	g.emit(c.o, e.b)
}

// prompt writes a user prompt line.
func (c *convo) prompt(text []byte) {
	u := user{env: c.nextEnv(), prompt: text}
	c.writeUser(&u, false)
	c.ctx += len(text)/4 + 5
}

// turn writes one user prompt and the responses and tool calls it leads to.
func (c *convo) turn() {
	g, r := c.g, c.g.r
	gap := int64(lognorm(r, 45, 1.2, 3, 3*3600)) * second
	if c.plan.marathon {
		gap = int64(lognorm(r, 10, 1.0, 2, 3600)) * second
	}
	if (!c.plan.marathon && r.IntN(25) == 0) || r.IntN(250) == 0 {
		gap = 5*hour + r.Int64N(11*hour) // overnight: a gap between 5-hour blocks
	}
	c.now += gap
	if c.now >= g.end-10*minute {
		c.done = true
		return
	}
	if c.era >= 1 && r.IntN(10) < 7 {
		c.snapshot()
	}
	if r.IntN(30) == 0 {
		c.localCommand("/model")
		x := r.IntN(1000)
		for _, m := range models {
			if x -= m.w; x < 0 {
				c.model = m.name
				break
			}
		}
		if c.plan.longCtx {
			c.model = models[0].name
		}
	}
	n := lognorm(r, 5, 0.9, 1, 80)
	text := g.p.slice(r, lognorm(r, 180, 1.0, 3, 20_000))
	if c.plan.forceLong {
		c.plan.forceLong = false
		text = g.p.slice(r, 2000)
	}
	c.prompt(text)
	c.now += 100 + r.Int64N(400)
	for i := 0; i < n && !c.done; i++ {
		p := c.plan
		if p.forceAPIErr || r.IntN(300) == 0 {
			limit := p.forceAPIErr || r.IntN(5) < 2
			p.forceAPIErr = false
			if c.apiError(limit) {
				return
			}
		}
		if p.forceZero || r.IntN(900) == 0 {
			p.forceZero = false
			c.zeroUsage()
		}
		c.step(i == n-1)
		if p.forceMalformed || r.IntN(700) == 0 {
			p.forceMalformed = false
			c.malformed()
		}
		if c.era == 2 && !c.noReq && c.spawn && (p.forceBtw || r.IntN(400) == 0) && !c.done {
			p.forceBtw = false
			c.aside()
		}
	}
}

// step writes one response and its tool calls' results.
func (c *convo) step(final bool) {
	g, r := c.g, c.g.r
	bs := c.blocks(final)
	if !c.respond(bs) {
		return
	}
	for i := range bs {
		b := bs[i]
		if b.kind != blkTool || c.done {
			continue
		}
		var res []byte
		path := ""
		switch b.tool {
		case "Task":
			res = c.subagent(&b)
		case "Read":
			c.now += 30 + r.Int64N(300)
			res, path = g.p.slice(r, lognorm(r, 150, 1.1, 20, 120_000)), b.path
		case "Bash":
			c.now += int64(lognorm(r, 2500, 1.5, 50, 600_000))
			if c.era == 2 && r.IntN(7) == 0 {
				c.bashProgress(&b)
			}
			res = g.p.slice(r, lognorm(r, 70, 1.3, 1, 60_000))
		case "Grep", "Glob":
			c.now += 50 + r.Int64N(800)
			res = g.p.slice(r, lognorm(r, 120, 1.2, 5, 30_000))
		case "WebSearch":
			c.now += 3000 + r.Int64N(9000)
			res = g.p.slice(r, lognorm(r, 900, 0.5, 200, 20_000))
		case "Edit":
			c.now += 50 + r.Int64N(2000)
			res = g.p.slice(r, lognorm(r, 160, 0.7, 60, 8000))
		default:
			c.now += 20 + r.Int64N(300)
			res = g.p.slice(r, 60+r.IntN(120))
		}
		if c.done {
			return
		}
		u := user{env: c.nextEnv(), toolID: b.toolID, result: res, path: path, isErr: r.IntN(30) == 0}
		c.writeUser(&u, true)
		c.ctx += len(res)/4 + 10
	}
	if c.ctx > c.compactAt {
		c.compact()
	}
}

func (c *convo) blocks(final bool) []block {
	g, r := c.g, c.g.r
	bs := c.bbuf[:0]
	if r.IntN(100) < 35 {
		bs = append(bs, block{kind: blkThinking, text: g.p.slice(r, lognorm(r, 150, 0.8, 20, 12_000)), extra: g.p.sig(r, 160+r.IntN(320))})
	}
	if final {
		bs = append(bs, block{kind: blkText, text: g.p.slice(r, lognorm(r, 170, 1.0, 2, 8000))})
	} else {
		if r.IntN(100) < 40 {
			bs = append(bs, block{kind: blkText, text: g.p.slice(r, lognorm(r, 70, 0.8, 2, 2000))})
		}
		nt := 1
		if r.IntN(100) < 15 {
			nt++
		}
		if r.IntN(100) < 4 {
			nt++
		}
		for range nt {
			if len(bs) == 4 {
				break
			}
			bs = append(bs, c.toolBlock())
		}
	}
	c.bbuf = bs
	return bs
}

func (c *convo) toolBlock() block {
	g, r := c.g, c.g.r
	b := block{kind: blkTool, toolID: g.id.toolID()}
	p := c.plan
	switch {
	case p.forceTask && c.spawn:
		p.forceTask = false
		b.tool = "Task"
	case p.forceWeb:
		p.forceWeb = false
		b.tool = "WebSearch"
	default:
		x := r.IntN(1000)
		if !c.spawn {
			x = r.IntN(980)
		}
		switch {
		case x < 300:
			b.tool = "Read"
		case x < 520:
			b.tool = "Bash"
		case x < 660:
			b.tool = "Edit"
		case x < 750:
			b.tool = "Grep"
		case x < 790:
			b.tool = "Glob"
		case x < 830:
			b.tool = "Write"
		case x < 890:
			b.tool = "TodoWrite"
		case x < 980:
			b.tool = "WebSearch"
			if r.IntN(9) > 1 {
				b.tool = "Read"
			}
		default:
			b.tool = "Task"
		}
	}
	paths := p.p.paths
	b.path = paths[r.IntN(len(paths))]
	switch b.tool {
	case "Edit":
		b.text, b.extra = g.p.slice(r, lognorm(r, 80, 1.0, 3, 4000)), g.p.slice(r, lognorm(r, 110, 1.0, 3, 6000))
	case "Write":
		b.text = g.p.slice(r, lognorm(r, 500, 1.0, 20, 30_000))
	case "Task":
		b.text, b.extra = g.p.slice(r, lognorm(r, 450, 0.6, 50, 6000)), g.p.slice(r, 10+r.IntN(30))
	case "Grep", "WebSearch":
		b.text = g.p.slice(r, 5+r.IntN(40))
	case "TodoWrite":
		b.text, b.extra = g.p.slice(r, 20+r.IntN(80)), g.p.slice(r, 20+r.IntN(80))
	case "Bash":
		b.text, b.extra = g.p.slice(r, lognorm(r, 60, 0.8, 3, 2000)), g.p.slice(r, 10+r.IntN(40))
	}
	return b
}

// respond writes one response, one line per content block, and returns
// false if the corpus's window ended first.
func (c *convo) respond(bs []block) bool {
	g, r := c.g, c.g.r
	n := len(bs)
	var ts [4]int64
	t := c.now + int64(lognorm(r, 2500, 0.6, 300, 60_000))
	out := 0
	web := int32(0)
	for i := range bs {
		ts[i] = t
		b := &bs[i]
		switch b.kind {
		case blkThinking:
			t += 800 + int64(len(b.text))*8
			out += len(b.text)/3 + len(b.extra)/8
		case blkText:
			t += 300 + int64(len(b.text))*5
			out += len(b.text)/4 + 1
		default:
			t += 200 + int64(len(b.text)+len(b.extra))*4
			out += 25 + (len(b.text)+len(b.extra)+len(b.path))/4
			if b.tool == "WebSearch" {
				web += int32(1 + r.IntN(3))
			}
		}
	}
	if day(ts[0]) != day(ts[n-1]) {
		// Keep every line of a response on one UTC date.
		shift := (day(ts[0])+1)*dayMillis - ts[0] + 1 + r.Int64N(2000)
		for i := range n {
			ts[i] += shift
		}
	}
	if ts[n-1] >= g.end-second {
		c.done = true
		return false
	}
	if n > 1 {
		out = max(out, 10+r.IntN(20))
	}
	u := c.usage(ts[0], out)
	u.ws = web
	msgID, key := g.id.msgID()
	req := ""
	if !c.noReq {
		req = g.id.requestID()
	}
	stop := "end_turn"
	if bs[n-1].kind == blkTool {
		stop = "tool_use"
	}
	if n > 1 {
		if c.variantB {
			g.t.Counts.SplitPartialOutput++
		} else {
			g.t.Counts.SplitSameUsage++
		}
	}
	c.lastResp = c.lastResp[:0]
	if c.keepTail {
		c.tail = append(c.tail, nil)
		if len(c.tail) > tailMax {
			copy(c.tail, c.tail[1:])
			c.tail = c.tail[:tailMax]
			c.tail[tailMax-1] = nil
		}
	}
	for i := range n {
		c.now = ts[i]
		a := asst{env: c.nextEnv(), model: c.model, msgID: msgID, key: key, reqID: req, blk: bs[i], stop: stop, u: u, noSplit: c.noSplit}
		if i < n-1 && c.variantB {
			a.u.out = int32(1 + r.IntN(9))
			a.stop = ""
		}
		c.writeAsst(&a)
	}
	return true
}

// usage returns the usage of a request sent at time at that produces out
// tokens, and moves the context and cache state past it.
func (c *convo) usage(at int64, out int) usage {
	r := c.g.r
	prompt := c.ctx
	in := 1 + r.IntN(8)
	if r.IntN(40) == 0 {
		in = 50 + r.IntN(3000)
	}
	in = min(in, prompt/4)
	life := 5 * minute
	if c.ttl == ttl1h {
		life = hour
	}
	read := c.cached
	if c.cached == 0 || at-c.lastCall > life {
		read = 0
	}
	read = min(read, prompt-in)
	write := prompt - in - read
	var u usage
	u.in, u.cr, u.out = int32(in), int32(read), int32(max(out, 1))
	switch {
	case c.noSplit || c.ttl == ttl5m:
		u.cw5 = int32(write)
	case c.ttl == ttl1h:
		u.cw1 = int32(write)
	default:
		h := write * (30 + r.IntN(60)) / 100
		u.cw1, u.cw5 = int32(h), int32(write-h)
	}
	if r.IntN(200) == 0 {
		u.wf = int32(1 + r.IntN(2))
	}
	c.cached = read + write
	c.ctx = prompt + out
	c.lastCall = at
	return u
}

func (c *convo) compact() {
	g, r := c.g, c.g.r
	c.now += 20*second + r.Int64N(60*second)
	v := c.nextEnv()
	e := &g.e
	e.reset(e.b, c.o.spaced)
	e.obj()
	v2 := v
	v2.parent = ""
	e.envelope(&v2)
	e.kstr("logicalParentUuid", c.last)
	e.kstr("type", "system")
	e.kstr("subtype", "compact_boundary")
	e.kstr("content", "Conversation compacted")
	e.kbool("isMeta", false)
	e.key("timestamp")
	e.ts(v.ts)
	e.kstr("uuid", v.uuid)
	e.kstr("level", "info")
	e.key("compactMetadata")
	e.obj()
	e.kstr("trigger", "auto")
	e.kint("preTokens", int64(c.ctx))
	e.end()
	e.end()
	g.emit(c.o, e.b)
	c.last = v.uuid
	sum := g.p.slice(r, lognorm(r, 5000, 0.5, 1000, 30_000))
	u := user{env: c.nextEnv(), prompt: sum, compact: true}
	c.writeUser(&u, false)
	c.ctx = 16_000 + r.IntN(6000) + len(sum)/4
	c.cached = 0
}

func (c *convo) bashProgress(b *block) {
	g, r := c.g, c.g.r
	for i := range 1 + r.IntN(3) {
		c.now += 1000 + r.Int64N(4000)
		v := c.nextEnv()
		e := &g.e
		e.reset(e.b, c.o.spaced)
		e.obj()
		e.envelope(&v)
		e.kstr("type", "progress")
		e.key("data")
		e.obj()
		e.kstr("type", "bash_progress")
		e.key("output")
		e.strb(g.p.slice(r, 20+r.IntN(200)))
		e.kint("elapsedTimeSeconds", int64(i+1))
		e.end()
		e.kstr("toolUseID", "bash-progress-"+strconv.Itoa(i))
		e.kstr("parentToolUseID", b.toolID)
		e.kstr("uuid", v.uuid)
		e.key("timestamp")
		e.ts(v.ts)
		e.end()
		g.emit(c.o, e.b)
	}
}

// apiError writes a <synthetic> error line and returns true when it was the
// usage limit, after which the session waits for the reset.
func (c *convo) apiError(limit bool) bool {
	g, r := c.g, c.g.r
	c.now += 500 + r.Int64N(5000)
	text := "API Error: Request timed out."
	switch {
	case limit:
		reset := (c.now/hour)*hour + 5*hour
		text = "Claude AI usage limit reached|" + strconv.FormatInt(reset/1000, 10)
	case r.IntN(2) == 0:
		text = `API Error: 529 {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`
	}
	if c.now >= g.end-second {
		c.done = true
		return true
	}
	a := asst{env: c.nextEnv(), msgID: g.id.uuid(), apiErr: text}
	c.writeAsst(&a)
	if limit {
		c.now = (c.now/hour)*hour + 5*hour + r.Int64N(2*hour)
	}
	return limit
}

// zeroUsage writes a response line of a real model whose usage is all zero.
func (c *convo) zeroUsage() {
	g := c.g
	c.now += 1000 + g.r.Int64N(3000)
	if c.now >= g.end-second {
		c.done = true
		return
	}
	id, key := g.id.msgID()
	a := asst{env: c.nextEnv(), model: c.model, msgID: id, key: key, blk: block{kind: blkText, text: []byte{}}, noSplit: c.noSplit}
	if !c.noReq {
		a.reqID = g.id.requestID()
	}
	c.writeAsst(&a)
}

// fresh renders, into g.e, a response line that is written nowhere else in
// full.
func (c *convo) fresh() {
	g, r := c.g, c.g.r
	id, key := g.id.msgID()
	a := asst{env: c.nextEnv(), model: c.model, msgID: id, key: key, noSplit: c.noSplit, stop: "end_turn",
		blk: block{kind: blkText, text: g.p.slice(r, lognorm(r, 300, 1.0, 5, 4000))},
		u:   usage{in: 3, cr: int32(c.cached), cw5: int32(200 + r.IntN(3000)), out: int32(50 + r.IntN(900))}}
	if !c.noReq {
		a.reqID = g.id.requestID()
	}
	g.e.reset(g.e.b, c.o.spaced)
	g.e.assistant(&a)
}

// malformed writes a line that is not valid JSON.
func (c *convo) malformed() {
	g, r := c.g, c.g.r
	switch r.IntN(4) {
	case 0: // a line cut short, the rest never written
		c.fresh()
		b := g.e.b
		g.emit(c.o, b[:len(b)*(20+r.IntN(76))/100])
	case 1: // random bytes
		b := g.e.b[:0]
		for range 20 + r.IntN(300) {
			x := byte(r.Uint32())
			if x == '\n' {
				x = ' '
			}
			b = append(b, x)
		}
		g.e.b = b
		g.emit(c.o, b)
	case 2: // a run of NUL bytes, as left by a crash
		b := g.e.b[:0]
		for range 50 + r.IntN(4000) {
			b = append(b, 0)
		}
		g.e.b = b
		g.emit(c.o, b)
	default: // two responses on one line, neither written elsewhere
		c.fresh()
		first := append([]byte(nil), g.e.b...)
		c.fresh()
		g.emit(c.o, append(first, g.e.b...))
	}
	g.t.Counts.MalformedLines++
}

// truncatedTail ends the file with a cut line and no newline.
func (c *convo) truncatedTail() {
	g, r := c.g, c.g.r
	c.now = min(c.now+1000+r.Int64N(5000), g.end-1)
	c.fresh()
	b := g.e.b
	g.emitCut(c.o, b[:len(b)*(40+r.IntN(56))/100])
	g.t.Counts.TruncatedTails++
}

// subagent runs a Task call's subagent and returns its final text.
func (c *convo) subagent(b *block) []byte {
	g, r := c.g, c.g.r
	s := &convo{
		g: g, plan: c.plan, env: c.env, model: c.model, era: c.era, variantB: c.variantB,
		noReq: c.noReq, noSplit: c.noSplit, ttl: c.ttl,
		ctx:       7000 + r.IntN(9000),
		compactAt: 160_000 + r.IntN(20_000),
		now:       c.now + 300 + r.Int64N(2000),
	}
	s.env.sidechain = true
	if r.IntN(2) == 0 {
		s.model = haiku
	}
	p := c.plan.p
	switch c.era {
	case 0:
		s.o = c.o
	case 1:
		s.env.agent = g.id.hex(8)
		s.o = g.create(p, filepath.Join(p.dir, "agent-"+s.env.agent+".jsonl"), r.IntN(50) == 0, kindFlat)
	default:
		s.env.agent = "a" + g.id.hex(16)
		s.o = g.create(p, filepath.Join(p.dir, c.env.session, "subagents", "agent-"+s.env.agent+".jsonl"), r.IntN(50) == 0, kindNested)
		s.parent, s.parentTool = c, b.toolID
	}
	s.prompt(b.text)
	n := lognorm(r, 7, 0.8, 1, 150)
	for i := 0; i < n && !s.done; i++ {
		s.step(i == n-1)
	}
	if c.era > 0 {
		if r.IntN(250) == 0 {
			s.truncatedTail()
		}
		g.close(s.o)
	}
	c.now = max(c.now, s.now) + 200 + r.Int64N(3000)
	c.done = s.done
	for _, a := range s.lastResp {
		if a.blk.kind == blkText {
			return a.blk.text
		}
	}
	return g.p.slice(r, 300)
}

// aside writes a /btw side question: a file that replays a line of the last
// response with another requestId, then the question and its answer.
func (c *convo) aside() {
	g, r := c.g, c.g.r
	if len(c.lastResp) == 0 {
		return
	}
	agent := "aside_question-" + g.id.hex(16)
	p := c.plan.p
	s := &convo{
		g: g, plan: c.plan, env: c.env, model: c.model, era: c.era, variantB: c.variantB,
		noSplit: c.noSplit, ttl: c.ttl, ctx: c.ctx, cached: c.cached, lastCall: c.lastCall,
		compactAt: 1 << 30,
	}
	s.env.sidechain, s.env.agent = true, agent
	s.o = g.create(p, filepath.Join(p.dir, c.env.session, "subagents", "agent-"+agent+".jsonl"), r.IntN(50) == 0, kindAside)
	rep := c.lastResp[r.IntN(len(c.lastResp))]
	rep.sidechain, rep.agent, rep.parent = true, agent, ""
	rep.reqID = g.id.requestID()
	rep.uuid = g.id.uuid()
	s.writeAsst(&rep)
	g.t.Counts.BtwReplays++
	s.now = c.now + 5*second + r.Int64N(60*second)
	s.prompt(g.p.slice(r, 20+r.IntN(200)))
	s.step(true)
	g.close(s.o)
	c.now = max(c.now, s.now)
	c.done = s.done
}
