// tokenmeter dashboard: a small page app over the admin JSON API (/api/*).
// No framework; charts by uPlot (vendor/). Everything shown is read from
// the API with the session cookie; mutations send the CSRF token.
'use strict';
(() => {
  const POLL_MS = 3000; // live pages refresh well within 5 s
  const S = { session: null, timer: null, gen: 0, usage: null, charts: [] };

  // ---- helpers ----
  const $ = (sel, el = document) => el.querySelector(sel);
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = v;
      else if (k === 'style') el.style.cssText = v; // CSSOM: allowed by the CSP, unlike a style attribute
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }
  const nf = new Intl.NumberFormat('en-US');
  const int = n => nf.format(n || 0);
  function human(n) {
    n = n || 0;
    const a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(2) + 'B';
    if (a >= 1e6) return (n / 1e6).toFixed(2) + 'M';
    if (a >= 1e4) return (n / 1e3).toFixed(1) + 'k';
    return int(n);
  }
  // Micro-dollars to the report's decimal string (six places), exactly.
  function microsStr(m) {
    m = Math.round(m || 0);
    const neg = m < 0; if (neg) m = -m;
    const s = String(m).padStart(7, '0');
    return (neg ? '-' : '') + s.slice(0, -6) + '.' + s.slice(-6);
  }
  const usd = m => '$' + ((m || 0) / 1e6).toFixed((m || 0) !== 0 && Math.abs(m) < 10000 ? 4 : 2);
  const ms = v => v >= 1000 ? (v / 1000).toFixed(2) + ' s' : Math.round(v) + ' ms';
  function localTime(s) {
    if (!s) return '';
    const d = new Date(s);
    return isNaN(d) ? s : d.toLocaleString();
  }
  function zoneDate(tz, d = new Date()) {
    // YYYY-MM-DD of d in the gateway's time zone.
    if (!tz) return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 10);
    return new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
  }
  function addDays(date, n) {
    const d = new Date(date + 'T00:00:00Z'); d.setUTCDate(d.getUTCDate() + n);
    return d.toISOString().slice(0, 10);
  }
  class APIError extends Error { constructor(status, msg) { super(msg); this.status = status; } }
  async function api(path, opts = {}) {
    const init = { method: opts.method || 'GET', credentials: 'same-origin', headers: { 'Accept': 'application/json' } };
    if (init.method !== 'GET') {
      init.headers['X-CSRF-Token'] = S.session ? S.session.csrf_token : '';
      if (opts.body !== undefined) { init.headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(opts.body); }
    }
    const resp = await fetch(path, init);
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    if (resp.status === 401) { location.href = '/ui/login'; throw new APIError(401, 'logged out'); }
    if (!resp.ok) throw new APIError(resp.status, (body && body.error && body.error.message) || resp.statusText);
    return body;
  }
  const isAdmin = () => S.session && S.session.role === 'admin';
  const tz = () => S.session.time_zone;

  // usage returns report data (/api/usage, or a key's own via /api/me).
  async function usage(kind, params) {
    const q = new URLSearchParams(Object.assign(tz() ? { tz: tz() } : {}, params));
    if (kind === 'hourly') return api((isAdmin() ? '/api/hourly?' : '/api/me/hourly?') + q);
    q.set('kind', kind);
    if (isAdmin()) return api('/api/usage?' + q);
    return (await api('/api/me?' + q)).usage;
  }

  // ---- pages ----
  const PAGES = [
    { id: 'overview', title: 'Overview', render: overview, live: true },
    { id: 'usage', title: 'Usage', render: usagePage },
    { id: 'requests', title: 'Requests', render: requestsPage, live: true },
    { id: 'limits', title: 'Limits', render: limitsPage, when: c => c.limits },
    { id: 'counters', title: 'Provider counters', render: countersPage, when: c => c.counters, admin: true },
    { id: 'alerts', title: 'Alerts', render: alertsPage, when: c => c.alerts, admin: true },
    { id: 'reconcile', title: 'Reconciliation', render: reconcilePage, when: c => c.reconcile, admin: true },
    { id: 'keys', title: 'Keys', render: keysPage, admin: true },
  ];
  const visible = () => PAGES.filter(p => (!p.admin || isAdmin()) && (!p.when || p.when(S.session.capabilities || {})));

  function figs(f, testid) {
    return h('div', { class: 'card', 'data-testid': testid,
      'data-total-tokens': f.total_tokens, 'data-input-tokens': f.input_tokens, 'data-output-tokens': f.output_tokens,
      'data-cache-creation-tokens': f.cache_creation_input_tokens, 'data-cache-read-tokens': f.cache_read_input_tokens,
      'data-requests': f.requests, 'data-cost-micros': f.cost_micros },
      h('h3', { text: testid.replace(/^period-/, '').replace(/^./, c => c.toUpperCase()) }),
      h('div', { class: 'big', title: int(f.total_tokens) + ' tokens' }, human(f.total_tokens), h('span', { class: 'muted small' }, ' tokens')),
      h('dl', { class: 'figs' },
        h('dt', {}, 'Input'), h('dd', {}, int(f.input_tokens)),
        h('dt', {}, 'Output'), h('dd', {}, int(f.output_tokens)),
        h('dt', {}, 'Cache write'), h('dd', {}, int(f.cache_creation_input_tokens)),
        h('dt', {}, 'Cache read'), h('dd', {}, int(f.cache_read_input_tokens)),
        h('dt', {}, 'Requests'), h('dd', {}, int(f.requests)),
        h('dt', {}, 'Cost'), h('dd', { title: microsStr(f.cost_micros) }, usd(f.cost_micros)),
        // Calls the gateway could not meter in full: estimated (cut
        // streams) and unknown usage are shown, never hidden in the totals.
        ...(f.usage_estimated_requests ? [h('dt', {}, 'Estimated'), h('dd', { 'data-estimated': f.usage_estimated_requests,
          title: 'calls whose usage is an estimate (a stream the client cut, a response not read in full)' },
          int(f.usage_estimated_requests) + ' calls, ' + human(f.estimated_tokens) + ' tok')] : []),
        ...(f.usage_unknown_requests ? [h('dt', {}, 'Usage unknown'), h('dd', { 'data-usage-unknown': f.usage_unknown_requests },
          int(f.usage_unknown_requests) + ' calls')] : [])));
  }

  async function overview(root, gen) {
    const zq = tz() ? '?tz=' + encodeURIComponent(tz()) : '';
    const [ov, st, lim, extra, trendD] = await Promise.all([
      api((isAdmin() ? '/api/overview' : '/api/me/overview') + zq),
      isAdmin() ? api('/api/status' + zq) : null,
      limitsData(),
      overviewExtra(),
      trendData(),
    ]);
    if (gen !== S.gen) return;
    const kids = [h('h1', {}, 'Overview ', h('span', { class: 'live', id: 'live', title: 'updates every few seconds' }, '● live'))];
    kids.push(h('div', { class: 'cards' }, figs(ov.today, 'period-today'), figs(ov.week, 'period-week'), figs(ov.month, 'period-month')));
    if (st && st.block) {
      const b = st.block;
      kids.push(h('h2', {}, 'Current 5-hour block'), h('div', { class: 'cards' },
        h('div', { class: 'card', 'data-testid': 'block' }, h('h3', {}, 'Block ' + localTime(b.start) + ' → ' + localTime(b.reset)),
          h('div', { class: 'big' }, human(b.total_tokens), h('span', { class: 'muted small' }, ' tokens · ' + usd(b.cost_micros))),
          h('dl', { class: 'figs' },
            // The server's one rule (report.BurnRateAt): no rate until
            // burn_rate_from, a few minutes after the block's first call.
            h('dt', {}, 'Burn rate'), h('dd', { 'data-testid': 'burn-rate' }, b.burn_rate ? human(Math.round(b.burn_rate.tokens_per_minute)) + ' tok/min · ' + usd(b.burn_rate.cost_micros_per_hour) + '/h'
              : h('span', { class: 'muted', title: 'measured over at least ' + Math.round((Date.parse(b.burn_rate_from) - Date.parse(b.first_activity)) / 60000) + ' minutes from the block\'s first call' }, 'from ' + new Date(b.burn_rate_from).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }))),
            h('dt', {}, 'Projected at reset'), h('dd', {}, b.projection ? human(b.projection.total_tokens) + ' · ' + usd(b.projection.cost_micros) : '—'),
            h('dt', {}, 'Resets in'), h('dd', {}, b.remaining_minutes + ' min')))));
    } else if (st) {
      kids.push(h('p', { class: 'muted' }, 'No active 5-hour block.'));
    }
    if (lim && lim.length) {
      const top = lim.filter(l => l.used !== undefined).sort((a, b) => ratio(b) - ratio(a)).slice(0, 5);
      if (top.length) kids.push(h('h2', {}, 'Limits nearest to exhaustion'), limitsTable(top));
    }
    const trend = h('div', { id: 'trend' });
    kids.push(trend, ...extra);
    root.replaceChildren(...kids);
    drawTrend(trend, trendD);
  }

  // ---- overview trend: the last 24 hours by hour, the last 30 days by day ----
  const TREND_MS = 60000, TREND_MODELS = 6;
  // trendData returns the hourly (last 48 h) and daily (last 30 days)
  // usage by model, read at most once a minute: the live overview
  // refreshes every few seconds, the trend does not need to.
  async function trendData() {
    if (S.trend && Date.now() - S.trend.at < TREND_MS && S.trend.who === S.session.role) return S.trend;
    const today = zoneDate(tz());
    const [hourly, daily] = await Promise.all([usage('hourly', { by: 'model' }), usage('daily', { since: addDays(today, -29), until: today, by: 'model' })]);
    S.trend = { at: Date.now(), who: S.session.role, today, hourly, daily };
    return S.trend;
  }
  // localHour is the gateway zone's current hour as report periods name it.
  function localHour() {
    const f = new Intl.DateTimeFormat('en-CA', Object.assign({ year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', hourCycle: 'h23' }, tz() ? { timeZone: tz() } : {}));
    const p = Object.fromEntries(f.formatToParts(new Date()).map(x => [x.type, x.value]));
    return `${p.year}-${p.month}-${p.day}T${p.hour}:00`;
  }
  // trendModels ranks the models of rows by tokens: the largest
  // TREND_MODELS are charted by name, the rest as "other". Both spans use
  // the 30 days' ranking, so a model keeps its colour.
  function trendModels(rows) {
    const total = new Map();
    for (const r of rows) total.set(r.key, (total.get(r.key) || 0) + r.total_tokens);
    const ranked = [...total.keys()].sort((a, b) => total.get(b) - total.get(a) || (a < b ? -1 : 1));
    return ranked.length > TREND_MODELS + 1 ? ranked.slice(0, TREND_MODELS) : ranked;
  }
  // trendSeries turns report rows into one series per model of models
  // (and "other") over xs, the periods' times; models without usage in
  // the span are left out.
  function trendSeries(rows, xs, models, field, scale) {
    const at = new Map(xs.map((x, i) => [x, i]));
    const name = k => models.includes(k) ? k : 'other';
    const series = models.concat(['other']).map((label, i) => ({ label, data: xs.map(() => 0), used: false, color: PALETTE[i % PALETTE.length] }));
    const si = new Map(series.map((s, i) => [s.label, i]));
    for (const r of rows) {
      const i = at.get(periodTime(r.period));
      if (i === undefined) continue;
      const s = series[si.get(name(r.key))];
      s.data[i] += r[field] / scale;
      s.used = true;
    }
    return series.filter(s => s.used);
  }
  function drawTrend(el, d) {
    (S.trendCharts || []).forEach(c => c.destroy()); S.trendCharts = [];
    const hour0 = periodTime(localHour());
    const hours = Array.from({ length: 24 }, (_, i) => hour0 - (23 - i) * 3600);
    const days = Array.from({ length: 30 }, (_, i) => periodTime(addDays(d.today, i - 29)));
    const money = v => '$' + v.toFixed(2);
    const models = trendModels(d.daily.rows.concat(d.hourly.rows));
    const panels = [
      ['Last 24 hours, by hour', 'trend-hourly', d.hourly.rows, hours],
      ['Last 30 days, by day', 'trend-daily', d.daily.rows, days],
    ];
    const kids = [], draws = [];
    for (const [title, id, rows, xs] of panels) {
      const tokens = trendSeries(rows, xs, models, 'total_tokens', 1), cost = trendSeries(rows, xs, models, 'cost_micros', 1e6);
      const box = h('div', { class: 'charts2' }), t = h('div', { class: 'chart', id: id + '-tokens' }), c = h('div', { class: 'chart', id: id + '-cost' });
      kids.push(h('h2', {}, title));
      if (!tokens.length) { kids.push(h('p', { class: 'muted', id: id + '-empty' }, 'No usage in this span.')); continue; }
      box.append(t, c);
      kids.push(box);
      draws.push(() => {
        S.trendCharts.push(stackedChart(t, 'Tokens by model', xs, tokens, human, 200));
        S.trendCharts.push(stackedChart(c, 'Cost by model (USD)', xs, cost, money, 200));
      });
    }
    // Charts measure their element: draw them once it is in the page.
    el.replaceChildren(...kids);
    draws.forEach(f => f());
  }

  async function overviewExtra() {
    const c = S.session.capabilities || {}, out = [];
    if (!isAdmin()) return out;
    const week = new Date(Date.now() - 7 * 86400e3).toISOString().replace(/\.\d+Z$/, 'Z');
    const [al, an] = await Promise.all([
      c.alerts ? api('/api/alerts?state=firing').catch(e => ({ error: e })) : null,
      c.anomalies ? api('/api/anomalies?since=' + encodeURIComponent(week)).catch(e => ({ error: e })) : null]);
    if (al) {
      out.push(h('h2', {}, 'Open alerts'));
      if (al.error) out.push(h('p', { class: 'error' }, al.error.message));
      else out.push((al.alerts || []).length ? h('ul', { id: 'open-alerts' }, ...al.alerts.slice(0, 5).map(x => h('li', {},
        pill(x.severity, x.severity === 'critical' ? 'bad' : 'warn'), ' ', h('a', { href: '#/alerts?id=' + x.id }, x.subject), ' ', h('span', { class: 'muted' }, x.summary))))
        : h('p', { class: 'muted' }, 'None firing.'));
    }
    if (an) {
      out.push(h('h2', {}, 'Anomalies (last 7 days)'));
      if (an.error) out.push(h('p', { class: 'error' }, an.error.message));
      else out.push((an.anomalies || []).length ? anomalyList(an.anomalies.slice(-5).reverse()) : h('p', { class: 'muted' }, 'None.'));
    }
    return out;
  }

  // ---- usage ----
  const KINDS = { hour: 'hourly', day: 'daily', week: 'weekly', month: 'monthly' };
  async function usagePage(root, gen) {
    const today = zoneDate(tz());
    const p = S.usage || (S.usage = { grain: 'day', by: '', since: addDays(today, -13), until: today });
    const sel = (id, value, opts) => h('select', { id, onchange: e => { p[id] = e.target.value; route(); } },
      ...opts.map(([v, t]) => h('option', { value: v, selected: v === value }, t)));
    const date = (id, value) => h('input', { type: 'date', id, value, onchange: e => { p[id] = e.target.value; route(); } });
    const controls = h('div', { class: 'controls' },
      h('label', {}, 'Interval', sel('grain', p.grain, [['hour', 'Hour'], ['day', 'Day'], ['week', 'Week'], ['month', 'Month']])),
      h('label', {}, 'Group by', sel('by', p.by, [['', 'Nothing'], ['model', 'Model'], ['key', 'Key'], ['project', 'Project'], ['tag', 'Tag']])),
      h('label', {}, 'From', date('since', p.since)), h('label', {}, 'To', date('until', p.until)),
      h('button', { id: 'csv', class: 'secondary', onclick: () => downloadCSV() }, 'Download CSV'));
    const rep = await usage(KINDS[p.grain], { since: p.since, until: p.until, by: p.by });
    if (gen !== S.gen) return;
    S.shown = rep;
    const tokensChart = h('div', { class: 'chart', id: 'chart-tokens' }), costChart = h('div', { class: 'chart', id: 'chart-cost' });
    root.replaceChildren(h('h1', {}, 'Usage'), controls, tokensChart, costChart, usageTable(rep));
    drawUsage(rep, tokensChart, costChart);
  }

  function periodTime(p) {
    // Periods are local dates (YYYY-MM-DD, YYYY-MM, YYYY-MM-DDTHH:00);
    // the chart shows them as written, on a UTC axis.
    if (/^\d{4}-\d{2}$/.test(p)) p += '-01';
    if (/^\d{4}-\d{2}-\d{2}$/.test(p)) p += 'T00:00';
    return Date.parse(p + ':00Z') / 1000;
  }

  const PALETTE = ['#2f6fdb', '#e07b39', '#3aa76d', '#b84fc9', '#d64550', '#1fa2b5', '#8c6d31', '#7f7f7f'];

  // stackedChart draws series (bottom first, each {label, data} and an
  // optional color) over xs
  // (seconds) as stacked areas in el: each band is one series, the top
  // line the total, so no series hides another (uPlot draws cumulative
  // lines; bands fill between neighbours). The legend and hover show each
  // series' own value. Returns the uPlot instance.
  function stackedChart(el, title, xs, series, fmt, height) {
    const css = getComputedStyle(document.documentElement);
    const fg = css.getPropertyValue('--muted').trim() || '#667085', grid = css.getPropertyValue('--line').trim() || '#e3e6eb';
    const width = Math.max(260, el.clientWidth - 16);
    const cum = [], acc = xs.map(() => 0);
    for (const s of series) cum.push(s.data.map((v, i) => (acc[i] += v || 0)));
    const color = i => series[i].color || PALETTE[i % PALETTE.length];
    const axis = (vals) => ({ stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, values: vals });
    const opts = {
      title, width, height: height || 260, tzDate: ts => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
      series: [{}].concat(series.map((s, i) => ({ label: s.label, stroke: color(i), width: 1.5, fill: color(i) + '66',
        points: { show: xs.length < 60 && xs.length > 1 }, value: (u, v, si, di) => di === null || di === undefined ? '—' : fmt(series[si - 1].data[di] || 0) }))),
      // Band i fills between series i+1 (the running total with series i)
      // and series i (without it); the bottom series fills to zero.
      bands: series.slice(1).map((s, i) => ({ series: [i + 2, i + 1], fill: color(i + 1) + '66' })),
      axes: [axis(), Object.assign(axis((u, vals) => vals.map(fmt)), { size: 70 })],
    };
    const chart = new uPlot(opts, [xs, ...cum], el);
    el.dataset.series = String(series.length);
    el.dataset.stacked = 'true';
    return chart;
  }

  function drawUsage(rep, elTokens, elCost) {
    S.charts.forEach(c => c.destroy()); S.charts = [];
    const periods = [...new Set(rep.rows.map(r => r.period))].sort();
    if (!periods.length) { elTokens.append(h('p', { class: 'muted' }, 'No usage in this range.')); elCost.remove(); return; }
    const xs = periods.map(periodTime), idx = new Map(periods.map((p, i) => [p, i]));
    let tokenSeries;
    if (!rep.by) {
      tokenSeries = [['Input', 'input_tokens'], ['Output', 'output_tokens'], ['Cache write', 'cache_creation_input_tokens'], ['Cache read', 'cache_read_input_tokens']]
        .map(([label, f]) => ({ label, data: periods.map(() => 0), f }));
      for (const r of rep.rows) for (const s of tokenSeries) s.data[idx.get(r.period)] += r[s.f];
    } else {
      const keys = [...new Set(rep.rows.map(r => r.key))].sort();
      tokenSeries = keys.map(k => ({ label: k, data: periods.map(() => 0), k }));
      const byKey = new Map(tokenSeries.map(s => [s.k, s]));
      for (const r of rep.rows) byKey.get(r.key).data[idx.get(r.period)] += r.total_tokens;
    }
    const groups = rep.by ? [...new Set(rep.rows.map(r => r.key))].sort() : ['Cost'];
    const costSeries = groups.map(g => ({ label: g, data: periods.map(() => 0) }));
    const gi = new Map(groups.map((g, i) => [g, i]));
    for (const r of rep.rows) costSeries[gi.get(rep.by ? r.key : 'Cost')].data[idx.get(r.period)] += r.cost_micros / 1e6;
    S.charts.push(stackedChart(elTokens, 'Tokens', xs, tokenSeries, human));
    S.charts.push(stackedChart(elCost, 'Cost (USD)', xs, costSeries, v => '$' + v.toFixed(2)));
  }

  function usageTable(rep) {
    const cols = [['input_tokens', 'Input'], ['output_tokens', 'Output'], ['cache_creation_input_tokens', 'Cache write'],
      ['cache_read_input_tokens', 'Cache read'], ['reasoning_tokens', 'Reasoning'], ['total_tokens', 'Total'], ['requests', 'Requests']];
    const row = (r, cls) => h('tr', { class: cls }, h('td', {}, r.period || 'TOTAL'), rep.by ? h('td', {}, r.key || '') : null,
      ...cols.map(([f]) => h('td', { class: 'n' }, int(r[f]))), h('td', { class: 'n', title: microsStr(r.cost_micros) }, usd(r.cost_micros)));
    return h('div', { class: 'table-wrap' }, h('table', { id: 'usage-table' },
      h('thead', {}, h('tr', {}, h('th', {}, 'Period'), rep.by ? h('th', {}, rep.by[0].toUpperCase() + rep.by.slice(1)) : null,
        ...cols.map(([, t]) => h('th', { class: 'n' }, t)), h('th', { class: 'n' }, 'Cost'))),
      h('tbody', {}, ...rep.rows.map(r => row(r)), row(Object.assign({}, rep.totals, { period: 'TOTAL', key: '' }), 'total'))));
  }

  // csv is the shown report as `tokenmeter report --csv` writes it.
  function csv(rep) {
    const head = ['period', 'key', 'input_tokens', 'output_tokens', 'cache_creation_input_tokens', 'cache_read_input_tokens',
      'reasoning_tokens', 'total_tokens', 'requests', 'cost_usd', 'usage_unknown_requests', 'cost_unknown_requests', 'outcome_unknown_requests',
      'usage_estimated_requests', 'estimated_tokens'];
    const q = s => /[",\n\r]/.test(s) || /^\s/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
    // Text cells a spreadsheet would evaluate get a leading quote, as in
    // the CLI (internal/textsafe.CSVCell, OWASP's CSV injection advice).
    const text = s => /^[=+\-@\t\r]/.test(s) ? "'" + s : s;
    const line = (p, k, f) => [text(p), text(k || ''), f.input_tokens, f.output_tokens, f.cache_creation_input_tokens, f.cache_read_input_tokens,
      f.reasoning_tokens, f.total_tokens, f.requests, microsStr(f.cost_micros), f.usage_unknown_requests, f.cost_unknown_requests,
      f.outcome_unknown_requests, f.usage_estimated_requests, f.estimated_tokens].map(v => q(String(v))).join(',');
    return [head.join(','), ...rep.rows.map(r => line(r.period, r.key, r)), line('TOTAL', '', rep.totals)].join('\n') + '\n';
  }
  function downloadCSV() {
    const rep = S.shown; if (!rep) return;
    const url = URL.createObjectURL(new Blob([csv(rep)], { type: 'text/csv' }));
    const a = h('a', { href: url, download: `tokenmeter-${rep.report}${rep.by ? '-by-' + rep.by : ''}-${rep.since || 'start'}-${rep.until || 'now'}.csv` });
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // ---- requests ----
  function callRow(c) {
    return h('tr', { 'data-request-id': c.request_id },
      h('td', { title: c.time }, localTime(c.time)), h('td', {}, c.provider), h('td', {}, c.model || '—'),
      h('td', {}, c.key || '—'), h('td', {}, c.project || ''),
      h('td', { class: 'n' }, int(c.input_tokens)),
      h('td', { class: 'n', 'data-usage-state': c.usage_state, title: c.usage_state === 'estimated' ? 'estimated: ' + c.estimate
        : c.usage_state === 'unknown' ? 'usage unknown' : '' },
        (c.usage_state === 'estimated' ? '≈' : c.usage_state === 'unknown' ? '≥' : '') + int(c.output_tokens)),
      h('td', { class: 'n' }, int(c.cache_creation_input_tokens + c.cache_read_input_tokens)),
      h('td', { class: 'n', title: microsStr(c.cost_micros) + (c.service_tier && c.service_tier !== 'default' ? ' (' + c.service_tier + ' tier)' : '') },
        c.cost_known ? usd(c.cost_micros) : '?'),
      h('td', {}, c.status || '—'), h('td', { class: 'n' }, ms(c.latency_ms)), h('td', { class: 'n' }, c.ttfb_ms ? ms(c.ttfb_ms) : '—'),
      h('td', { title: c.reason || '' }, h('span', { class: 'pill ' + c.outcome }, c.outcome)));
  }
  async function requestsPage(root, gen, live) {
    // While older pages are shown, the live refresh leaves the page alone.
    if (live && S.reqOlder) return;
    S.reqOlder = false;
    const f = S.reqFilter || (S.reqFilter = { provider: '', model: '', key: '', project: '', outcome: '' });
    const q = new URLSearchParams({ limit: '100' });
    for (const [k, v] of Object.entries(f)) if (v) q.set(k, v);
    const path = isAdmin() ? '/api/requests?' : '/api/me/requests?';
    const data = await api(path + q);
    if (gen !== S.gen) return;
    const input = (k, ph) => h('input', { id: 'f-' + k, placeholder: ph, value: f[k], onchange: e => { f[k] = e.target.value.trim(); route(); } });
    const controls = h('div', { class: 'controls' },
      h('label', {}, 'Provider', input('provider', 'anthropic')), h('label', {}, 'Model', input('model', 'any')),
      isAdmin() ? h('label', {}, 'Key', input('key', 'key:NAME')) : null, h('label', {}, 'Project', input('project', 'any')),
      h('label', {}, 'Outcome', h('select', { id: 'f-outcome', onchange: e => { f.outcome = e.target.value; route(); } },
        ...['', 'ok', 'error', 'cancelled', 'failed', 'unknown'].map(o => h('option', { value: o, selected: o === f.outcome }, o || 'any')))));
    const rows = data.requests.map(callRow);
    const tbody = h('tbody', {}, ...rows);
    const note = h('p', { class: 'muted small', id: 'requests-note' },
      rows.length ? `Latest ${rows.length} calls. Prompts and completions are never stored.` : 'No calls match.');
    let next = data.next;
    const older = h('button', { class: 'secondary', id: 'older', onclick: async () => {
      S.reqOlder = true;
      q.set('before', next.before); q.set('before_seq', String(next.before_seq));
      const more = await api(path + q);
      tbody.append(...more.requests.map(callRow));
      next = more.next;
      if (!next) older.remove();
      note.replaceChildren(`${tbody.children.length} calls; live updates paused while older calls are shown. `,
        h('button', { class: 'link', id: 'latest', onclick: () => route() }, 'Back to the latest'));
    } }, 'Older calls');
    root.replaceChildren(h('h1', {}, 'Requests ', h('span', { class: 'live' }, '● live')), controls,
      h('div', { class: 'table-wrap' }, h('table', { id: 'requests-table' },
        h('thead', {}, h('tr', {}, ...['Time', 'Provider', 'Model', 'Key', 'Project'].map(t => h('th', {}, t)),
          ...['Input', 'Output', 'Cache', 'Cost'].map(t => h('th', { class: 'n' }, t)), h('th', {}, 'Status'),
          h('th', { class: 'n' }, 'Latency'), h('th', { class: 'n' }, 'TTFB'), h('th', {}, 'Outcome'))),
        tbody)),
      note, next ? older : null);
  }

  // ---- limits ----
  const ratio = l => l.max > 0 && l.used !== undefined ? l.used / l.max : 0;
  async function limitsData() {
    if (!(S.session.capabilities || {}).limits) return null;
    if (isAdmin()) return (await api('/api/limits')).limits;
    return (await api('/api/me?kind=daily')).limits || [];
  }
  function amount(l, v) { return l.metric === 'cost_usd' ? '$' + Number(v).toFixed(2) : human(v); }
  function projection(l) {
    // Linear: the window's usage so far, stretched over the whole window.
    const start = Date.parse(l.window_start), reset = Date.parse(l.reset), now = Date.now();
    if (l.used === undefined || !(reset > start) || now <= start) return null;
    return l.used * (reset - start) / Math.max(now - start, 1);
  }
  function limitsTable(list) {
    return h('div', { class: 'table-wrap' }, h('table', { class: 'limits-table' },
      h('thead', {}, h('tr', {}, ...['Limit', 'Scope', 'Window', 'Usage', '', 'Projected', 'Resets', 'Mode'].map(t => h('th', {}, t)))),
      h('tbody', {}, ...list.map(l => {
        const r = ratio(l), p = projection(l);
        return h('tr', { 'data-limit': l.name },
          h('td', {}, l.name), h('td', {}, l.scope), h('td', {}, l.window),
          h('td', {}, l.shared ? 'shared' : amount(l, l.used) + ' / ' + amount(l, l.max)),
          h('td', {}, l.shared ? '' : h('div', { class: 'bar' + (r >= 1 ? ' bad' : r >= 0.8 ? ' warn' : ''), title: Math.round(r * 100) + '%' },
            h('span', { style: 'width:' + Math.min(100, r * 100).toFixed(1) + '%' }))),
          h('td', {}, p === null ? '—' : h('span', { class: p > l.max ? 'error' : '' }, amount(l, Math.round(p * 100) / 100) + (p > l.max ? ' (over)' : ''))),
          h('td', { title: l.reset }, localTime(l.reset)), h('td', {}, l.mode));
      }))));
  }
  async function limitsPage(root, gen) {
    const list = await limitsData();
    if (gen !== S.gen) return;
    root.replaceChildren(h('h1', {}, 'Limits'), list && list.length ? limitsTable(list) : h('p', { class: 'muted' }, 'No limits set (tokenmeter limits set …).'));
  }

  // ---- keys ----
  async function keysPage(root, gen) {
    const data = await api('/api/keys');
    if (gen !== S.gen) return;
    const msg = h('div', { id: 'keys-msg' });
    // After a change the page re-renders: messages go to the new #keys-msg.
    const showSecret = (k, what) => $('#keys-msg').replaceChildren(h('div', { class: 'card' },
      h('p', {}, `Key ${k.name} ${what}. Copy it now: it is not shown again.`), h('div', { class: 'secret', id: 'new-secret' }, k.key)));
    const act = (k, action, label) => {
      const b = h('button', { class: action === 'revoke' ? 'danger' : 'secondary', 'data-action': action, 'data-key': k.name, onclick: async () => {
        if (!b.dataset.armed) { b.dataset.armed = '1'; b.textContent = 'Confirm ' + action; return; }
        try {
          const r = await api(`/api/keys/${encodeURIComponent(k.name)}/${action}`, { method: 'POST' });
          await keysPage(root, S.gen);
          if (r.key) showSecret(r, 'rotated'); else $('#keys-msg').replaceChildren(h('p', {}, `Key ${k.name} revoked.`));
        } catch (e) { $('#keys-msg').replaceChildren(h('p', { class: 'error' }, e.message)); }
      } }, label);
      return b;
    };
    const form = h('form', { class: 'controls', id: 'key-create', onsubmit: async e => {
      e.preventDefault();
      const body = { name: $('#k-name').value.trim(), project: $('#k-project').value.trim(), expires: $('#k-expires').value };
      try {
        const k = await api('/api/keys', { method: 'POST', body });
        await keysPage(root, S.gen);
        showSecret(k, 'created');
      } catch (err) { $('#keys-msg').replaceChildren(h('p', { class: 'error' }, err.message)); }
    } },
      h('label', {}, 'Name', h('input', { id: 'k-name', required: true, placeholder: 'ci-nightly' })),
      h('label', {}, 'Project', h('input', { id: 'k-project', placeholder: 'optional' })),
      h('label', {}, 'Expires', h('input', { id: 'k-expires', type: 'date' })),
      h('button', { type: 'submit' }, 'Create key'));
    root.replaceChildren(h('h1', {}, 'Virtual keys'), form, msg,
      h('div', { class: 'table-wrap' }, h('table', { id: 'keys-table' },
        h('thead', {}, h('tr', {}, ...['Name', 'Prefix', 'Project', 'Status', 'Created', 'Expires', ''].map(t => h('th', {}, t)))),
        h('tbody', {}, ...data.keys.map(k => h('tr', { 'data-key': k.name },
          h('td', {}, k.name), h('td', {}, h('code', {}, k.prefix + '…')), h('td', {}, k.project || ''),
          h('td', {}, h('span', { class: 'pill ' + (k.status === 'active' ? 'ok' : 'bad') }, k.status)),
          h('td', {}, localTime(k.created)), h('td', {}, k.expires ? localTime(k.expires) : 'never'),
          h('td', {}, k.status === 'active' ? [act(k, 'rotate', 'Rotate'), ' ', act(k, 'revoke', 'Revoke')] : '')))))));
  }

  // ---- provider counters, anomalies, alerts, reconciliation ----
  const hashParams = () => new URLSearchParams(location.hash.split('?')[1] || '');
  const pill = (text, cls) => h('span', { class: 'pill ' + (cls || text) }, text);
  function table(id, head, rows) {
    return h('div', { class: 'table-wrap' }, h('table', { id },
      h('thead', {}, h('tr', {}, ...head.map(c => h('th', { class: c.n ? 'n' : '' }, c.t || c)))),
      h('tbody', {}, ...rows)));
  }
  function anomalyList(list) {
    return h('ul', { id: 'anomalies' }, ...list.map(a => h('li', {},
      h('a', { href: '#/counters?anomaly=' + a.id, 'data-anomaly': a.id }, localTime(a.detected) + ' · ' + a.provider + ' · ' + a.kind.replace(/_/g, ' ')),
      ' ', h('span', { class: 'muted' }, a.summary))));
  }
  const COUNTER_RANGES = { '6h': 6, '24h': 24, '7d': 168 };
  async function countersPage(root, gen) {
    const params = hashParams();
    const range = S.counterRange || '24h';
    const since = new Date(Date.now() - COUNTER_RANGES[range] * 3600e3);
    const sinceISO = since.toISOString().replace(/\.\d+Z$/, 'Z');
    const id = params.get('anomaly');
    const [c, a, hourly, ev] = await Promise.all([
      api('/api/counters?since=' + encodeURIComponent(sinceISO)),
      api('/api/anomalies?since=' + encodeURIComponent(sinceISO)),
      usage('hourly', { since: zoneDate(tz(), since), by: 'provider' }),
      id ? api('/api/anomalies/' + encodeURIComponent(id)) : null,
    ]);
    if (gen !== S.gen) return;
    const kids = [h('h1', {}, 'Provider counters'), h('div', { class: 'controls' }, h('label', {}, 'Range',
      h('select', { id: 'counter-range', onchange: e => { S.counterRange = e.target.value; route(); } },
        ...Object.keys(COUNTER_RANGES).map(r => h('option', { value: r, selected: r === range }, 'last ' + r)))))];
    if (ev) {
      kids.push(h('div', { class: 'card', id: 'anomaly-evidence' },
        h('h3', {}, `Anomaly ${ev.id}: ${ev.kind.replace(/_/g, ' ')} · ${ev.provider}${ev.counter ? ' · ' + ev.counter : ''}`),
        h('p', { id: 'anomaly-summary' }, ev.summary),
        h('p', { class: 'muted small' }, `detected ${localTime(ev.detected)}; window ${localTime(ev.start)} → ${localTime(ev.end)}`),
        h('pre', { class: 'secret', id: 'anomaly-json' }, JSON.stringify(ev.evidence || {}, null, 2))));
    }
    const anomalies = a.anomalies || [];
    kids.push(h('h2', {}, 'Anomalies'), anomalies.length ? anomalyList(anomalies.slice().reverse()) : h('p', { class: 'muted' }, 'None in this range.'));
    // Series: one per provider, credential and counter.
    const series = new Map();
    for (const s of c.samples || []) {
      const k = s.provider + '\u0000' + (s.credential || '') + '\u0000' + s.counter;
      if (!series.has(k)) series.set(k, { provider: s.provider, credential: s.credential, counter: s.counter, samples: [] });
      series.get(k).samples.push(s);
    }
    kids.push(h('h2', {}, 'Counters and the ledger'));
    if (!series.size) kids.push(h('p', { class: 'muted' }, 'No provider rate-limit headers captured in this range.'));
    const charts = [];
    for (const s of [...series.values()].slice(0, 12)) {
      const last = s.samples[s.samples.length - 1];
      const el = h('div', { class: 'chart', 'data-series': s.counter });
      kids.push(h('div', { class: 'card counter' }, h('h3', {}, `${s.provider} · ${s.counter}${s.credential ? ' · ' + s.credential : ''}`),
        h('p', { class: 'small muted' }, 'last: ' + (last.utilization_bp !== undefined ? (last.utilization_bp / 100).toFixed(1) + ' % used' :
          int(last.remaining) + ' remaining of ' + (last.limit !== undefined ? int(last.limit) : '?')) + (last.reset ? ', resets ' + localTime(last.reset) : '')), el));
      charts.push([s, el]);
    }
    root.replaceChildren(...kids);
    S.charts.forEach(ch => ch.destroy()); S.charts = [];
    for (const [s, el] of charts) drawCounter(s, el, hourly, anomalies);
  }
  function drawCounter(s, el, hourly, anomalies) {
    // The counter (remaining, or % used) as steps, the ledger's tokens per
    // hour for the same provider as bars on the right axis, anomalies as
    // red lines at the time they were detected.
    const util = s.samples.some(x => x.utilization_bp !== undefined);
    const pts = s.samples.map(x => [Date.parse(x.time) / 1000, util ? (x.utilization_bp ?? null) / 100 : (x.remaining ?? null)]);
    const led = hourly.rows.filter(r => r.key === s.provider).map(r => [periodTime(r.period), r.total_tokens]);
    const xs = [...new Set([...pts.map(p => p[0]), ...led.map(p => p[0])])].sort((a, b) => a - b);
    const at = new Map(xs.map((x, i) => [x, i]));
    const y1 = xs.map(() => null), y2 = xs.map(() => null);
    for (const [x, v] of pts) y1[at.get(x)] = v;
    for (const [x, v] of led) y2[at.get(x)] = v;
    const marks = anomalies.filter(a => a.provider === s.provider && (!a.counter || a.counter === s.counter) &&
      (!a.credential || !s.credential || a.credential === s.credential)).map(a => Date.parse(a.detected) / 1000);
    const css = getComputedStyle(document.documentElement);
    const fg = css.getPropertyValue('--muted').trim(), grid = css.getPropertyValue('--line').trim(), bad = css.getPropertyValue('--bad').trim();
    const ax = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
    S.charts.push(new uPlot({
      width: Math.max(280, el.clientWidth - 16), height: 200,
      series: [{}, { label: util ? '% used' : 'remaining', stroke: '#2f6fdb', width: 2, spanGaps: true, paths: uPlot.paths.stepped({ align: 1 }) },
        { label: 'ledger tokens/h', stroke: '#e07b39', fill: '#e07b3933', scale: 'led', paths: uPlot.paths.bars({ size: [0.6, 40] }) }],
      axes: [ax, Object.assign({}, ax, { size: 60, values: (u, v) => v.map(util ? (x => x + '%') : human) }),
        Object.assign({}, ax, { scale: 'led', side: 1, size: 60, grid: { show: false }, values: (u, v) => v.map(human) })],
      hooks: { draw: [u => {
        const ctx = u.ctx; ctx.save(); ctx.strokeStyle = bad || '#c62828'; ctx.lineWidth = 2;
        for (const m of marks) {
          const x = u.valToPos(m, 'x', true);
          if (x >= u.bbox.left && x <= u.bbox.left + u.bbox.width) { ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke(); }
        }
        ctx.restore();
      }] },
    }, [xs, y1, y2], el));
  }

  async function alertsPage(root, gen) {
    const id = hashParams().get('id');
    const [a, one] = await Promise.all([api('/api/alerts'), id ? api('/api/alerts/' + encodeURIComponent(id)) : null]);
    if (gen !== S.gen) return;
    const kids = [h('h1', {}, 'Alerts')];
    if (one) {
      kids.push(h('div', { class: 'card', id: 'alert-detail' }, h('h3', {}, `Alert ${one.id}: ${one.subject}`), h('p', {}, one.summary),
        table('alert-history', ['Time', 'State', 'Summary'], (one.history || []).map(c => h('tr', {}, h('td', {}, localTime(c.time)), h('td', {}, pill(c.state)), h('td', {}, c.summary)))),
        h('h3', {}, 'Deliveries'),
        one.deliveries.length ? table('alert-deliveries', ['Sink', 'Transition', 'Attempts', 'Delivered', 'Next attempt', 'Last error'], one.deliveries.map(d => h('tr', {},
          h('td', {}, d.sink), h('td', {}, d.transition), h('td', {}, d.attempts), h('td', {}, localTime(d.delivered)), h('td', {}, localTime(d.next_attempt)), h('td', {}, d.last_error || '')))) : h('p', { class: 'muted' }, 'No sinks.'),
        one.details ? h('pre', { class: 'secret' }, JSON.stringify(one.details, null, 2)) : null));
    }
    const list = a.alerts || [];
    kids.push(list.length ? table('alerts-table', ['Fired', 'Severity', 'State', 'Kind', 'Subject', 'Summary', 'Resolved'], list.map(x => h('tr', { 'data-alert': x.id },
      h('td', {}, h('a', { href: '#/alerts?id=' + x.id }, localTime(x.fired))), h('td', {}, pill(x.severity, x.severity === 'critical' ? 'bad' : 'warn')),
      h('td', {}, pill(x.state, x.state === 'firing' ? 'bad' : 'ok')), h('td', {}, x.kind), h('td', {}, x.subject), h('td', {}, x.summary), h('td', {}, localTime(x.resolved)))))
      : h('p', { class: 'muted' }, 'No alerts in the last 7 days.'));
    root.replaceChildren(...kids);
  }

  async function reconcilePage(root, gen) {
    const id = hashParams().get('id');
    const [r, one] = await Promise.all([api('/api/reconcile'), id ? api('/api/reconcile/' + encodeURIComponent(id)) : null]);
    if (gen !== S.gen) return;
    const kids = [h('h1', {}, 'Reconciliation')];
    if (one) {
      const d = one.discrepancies || [];
      kids.push(h('div', { class: 'card', id: 'reconcile-detail' }, h('h3', {}, `Run ${one.id}: ${one.provider}, ${localTime(one.since)} → ${localTime(one.until)}`),
        one.error ? h('p', { class: 'error' }, one.error) : null,
        one.summary && one.summary.cost_unavailable ? h('p', { class: 'muted', id: 'cost-unavailable' }, 'Cost not compared: the provider refused the cost report (' + one.summary.cost_unavailable + ').') : null,
        d.length ? table('discrepancies', ['Bucket', 'Model', 'Key', 'Class', 'Category', { t: 'Provider', n: 1 }, { t: 'Ledger', n: 1 }, { t: 'Diff', n: 1 }, 'Final'],
          d.map(x => h('tr', { class: x.beyond_tolerance ? 'error' : '' }, h('td', {}, localTime(x.start)), h('td', {}, x.model), h('td', {}, x.key || ''),
            h('td', {}, x.class), h('td', {}, x.category), h('td', { class: 'n' }, int(x.provider)), h('td', { class: 'n' }, int(x.ledger)),
            h('td', { class: 'n' }, int(x.difference)), h('td', {}, x.final ? 'yes' : 'not yet'))))
          : h('p', { class: 'muted' }, 'The provider and the ledger agree.')));
    }
    const runs = r.runs || [];
    kids.push(runs.length ? table('reconcile-runs', ['Ran', 'Provider', 'Span', 'By', 'Status', { t: 'Rows', n: 1 }, { t: 'Beyond tolerance', n: 1 }, { t: 'Provider tokens', n: 1 }, { t: 'Ledger tokens', n: 1 }],
      runs.map(x => {
        const tot = u => u ? (u.input_tokens || 0) + (u.output_tokens || 0) + (u.cache_creation_5m_input_tokens || 0) + (u.cache_creation_1h_input_tokens || 0) + (u.cache_read_input_tokens || 0) : 0;
        return h('tr', { 'data-run': x.id }, h('td', {}, h('a', { href: '#/reconcile?id=' + x.id }, localTime(x.ran))), h('td', {}, x.provider),
          h('td', {}, localTime(x.since) + ' → ' + localTime(x.until)), h('td', {}, x.by), h('td', {}, pill(x.status, x.status === 'ok' ? 'ok' : 'bad')),
          h('td', { class: 'n' }, int(x.summary.rows)), h('td', { class: 'n' }, int(x.summary.beyond_tolerance)),
          h('td', { class: 'n' }, int(tot(x.summary.provider_usage))), h('td', { class: 'n' }, int(tot(x.summary.ledger_usage))));
      })) : h('p', { class: 'muted' }, 'No reconciliation runs yet (tokenmeter serve --reconcile anthropic, or tokenmeter reconcile).'));
    root.replaceChildren(...kids);
  }

  // ---- routing ----
  async function route() {
    clearTimeout(S.timer);
    const gen = ++S.gen;
    const id = (location.hash.replace(/^#\/?/, '').split('?')[0]) || 'overview';
    const pages = visible();
    const page = pages.find(p => p.id === id) || pages[0];
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === page.id);
    const root = $('#main');
    try {
      await page.render(root, gen);
      if (gen === S.gen) root.dataset.loaded = page.id + ':' + gen;
    } catch (e) {
      if (gen === S.gen && e.status !== 401) root.replaceChildren(h('h1', {}, page.title), h('p', { class: 'error', id: 'page-error' }, e.message));
    }
    if (page.live && gen === S.gen) {
      S.timer = setTimeout(() => { if (gen === S.gen) refresh(page, gen); }, POLL_MS);
    }
  }
  async function refresh(page, gen) {
    // A live page re-renders in place; pause while the tab is hidden.
    if (document.hidden) { S.timer = setTimeout(() => refresh(page, gen), POLL_MS); return; }
    const focused = document.activeElement && document.activeElement.id;
    try { await page.render($('#main'), gen, true); if (gen === S.gen) $('#main').dataset.refreshed = String(Date.now()); } catch (e) { /* keep the last view */ }
    if (focused && $('#' + focused)) $('#' + focused).focus();
    if (gen === S.gen) S.timer = setTimeout(() => refresh(page, gen), POLL_MS);
  }

  // Content-Security-Policy violations (an inline style, say) are kept
  // for the browser test, besides the console's report.
  S.csp = [];
  document.addEventListener('securitypolicyviolation', e => S.csp.push(e.violatedDirective + ' ' + (e.blockedURI || '')));

  async function start() {
    S.session = await api('/ui/session');
    $('#who').textContent = isAdmin() ? 'admin' : 'key ' + S.session.key;
    $('#nav').replaceChildren(...visible().map(p => h('a', { href: '#/' + p.id, 'data-page': p.id }, p.title)));
    $('#logout').addEventListener('click', async () => {
      try { await api('/ui/logout', { method: 'POST' }); } finally { location.href = '/ui/login'; }
    });
    window.addEventListener('hashchange', route);
    // For tests and the console: the shown report as CSV, and what each
    // chart draws (its series' labels, whether the lines are the running
    // totals of a stack, and its bands).
    window.tokenmeter = {
      csv: () => S.shown && csv(S.shown),
      charts: () => [...document.querySelectorAll('.chart')].filter(e => e.querySelector('.uplot')).map(e => {
        const u = [...S.charts, ...(S.trendCharts || [])].find(c => e.contains(c.root));
        if (!u) return { id: e.id };
        const lines = u.data.slice(1);
        const cumulative = lines.every((l, i) => i === 0 || l.every((v, j) => v >= lines[i - 1][j]));
        return { id: e.id, labels: u.series.slice(1).map(s => s.label), stacked: e.dataset.stacked === 'true' && cumulative,
          bands: (u.bands || []).length, points: u.data[0].length, last: lines[lines.length - 1][u.data[0].length - 1] };
      }),
      cspViolations: S.csp,
    };
    route();
  }
  start().catch(e => { $('#main').replaceChildren(h('p', { class: 'error' }, e.message)); });
})();
