/* resontinex live console: polls the worker that served this page and draws what it says.
 * Plain DOM and inline SVG; no framework, no build step, nothing fetched from elsewhere.
 * The arithmetic (Prometheus text, rates, quantiles) is in prom.js (window.Prom). */
"use strict";

(function () {
  const FAST_MS = 2000;          // /health, /metrics, /ui/recent
  const SLOW_MS = 5000;          // the status pages (they may ask peers, up to 2 s each)
  const FAST_TIMEOUT_MS = 5000;
  const MISSES_TO_DISCONNECT = 2; // one slow answer on a busy worker is not a lost worker
  const SLOW_TIMEOUT_MS = 8000;
  const HISTORY_S = 300;         // the verb chart's span
  const RATE_WINDOW_S = 10;      // the decisions/s, alerts/s and latency figures
  const KEEP_ROWS = 200;         // alerts and dead letters listed
  const VERBS = ["execute", "review", "defer", "abort"];
  const TIERS = ["pass", "monitor", "review", "block"];
  const COLORS = {
    execute: "#2e9d5b", review: "#d99a1e", defer: "#3a7bd5", abort: "#d64541",
    pass: "#2e9d5b", monitor: "#7fbf5a", block: "#d64541",
  };
  const OTHER_COLORS = ["#8e6bbf", "#5aa9b5", "#b5835a", "#7a7a7a"];

  const state = { seq: 0, samples: [], alerts: [], dead: [], lostAt: null, lastOk: null, misses: 0 };

  // ---------------------------------------------------------------- helpers

  const $ = (id) => document.getElementById(id);

  /** An element with attributes (`text` sets its text, `class`, `title`, `style`, data-*) and children. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === "text") node.textContent = String(v);
      else if (k === "style") node.style.cssText = v;
      else node.setAttribute(k, String(v));
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function svgEl(tag, attrs) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = String(v);
      else node.setAttribute(k, String(v));
    }
    return node;
  }

  function fill(tbodyParent, rows, emptyText) {
    const tbody = $(tbodyParent).tBodies[0];
    const cols = $(tbodyParent).tHead.rows[0].cells.length;
    tbody.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { class: "empty", colspan: cols, text: emptyText }))]));
  }

  const color = (key, i) => COLORS[key] || OTHER_COLORS[i % OTHER_COLORS.length];
  const dash = "–";
  const fmtInt = (n) => Math.round(n).toLocaleString("en-US");
  const fmtRate = (r) => (r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2));
  const fmtPct = (x) => (x * 100).toFixed(x < 0.1 ? 1 : 0) + " %";
  const fmtUsd = (x) => (x === null || x === undefined ? dash : Math.abs(x) < 1 && x !== 0 ? x.toFixed(4) : x.toFixed(2));
  const fmtNum = (x, d) => (x === null || x === undefined ? dash : Number(x).toFixed(d));
  const clock = (d) => d.toLocaleTimeString("en-GB", { hour12: false });

  function when(text) {
    if (!text) return el("span", { text: dash });
    const d = new Date(text);
    return el("time", { datetime: text, title: text, text: isNaN(d) ? text : clock(d) });
  }

  function dateTime(text) {
    const d = new Date(text);
    return isNaN(d) ? String(text) : d.toLocaleString("en-GB", { hour12: false, dateStyle: "short", timeStyle: "short" });
  }

  function duration(s) {
    if (!(s >= 0)) return dash;
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = Math.floor(s % 60);
    if (h) return `${h} h ${String(m).padStart(2, "0")} min`;
    if (m) return `${m} min ${String(sec).padStart(2, "0")} s`;
    return `${sec} s`;
  }

  /** Set a figure's text and its machine-readable `data-value` (empty when unknown). */
  function figure(id, value, format) {
    const node = $(id);
    const known = value !== null && value !== undefined && !Number.isNaN(value);
    node.textContent = known ? format(value) : dash;
    node.dataset.value = known ? String(value) : "";
  }

  async function get(path, timeoutMs, kind) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), timeoutMs);
    try {
      const r = await fetch(path, { signal: ctl.signal, cache: "no-store" });
      return { status: r.status, body: kind === "text" ? await r.text() : await r.json() };
    } finally {
      clearTimeout(timer);
    }
  }

  // ---------------------------------------------------------------- connection

  function connected(health) {
    state.lastOk = new Date();
    state.lostAt = null;
    state.misses = 0;
    document.body.classList.remove("disconnected");
    $("banner").hidden = true;
    const pill = $("conn");
    const ready = health.status === 200 && health.body.ready;
    pill.dataset.state = ready ? "live" : "not-ready";
    pill.textContent = ready ? "live" : "connected, not ready";
    $("updated").textContent = clock(state.lastOk);
    $("updated").setAttribute("datetime", state.lastOk.toISOString());
  }

  function disconnected(error) {
    if (state.lostAt === null) state.lostAt = state.lastOk || new Date();
    if (++state.misses < MISSES_TO_DISCONNECT) return;
    document.body.classList.add("disconnected");
    $("banner").hidden = false;
    $("lost").textContent = clock(state.lostAt);
    $("lost-why").textContent = error && error.name === "AbortError" ? `no answer within ${FAST_TIMEOUT_MS / 1000} s`
      : String((error && error.message) || error);
    const pill = $("conn");
    pill.dataset.state = "disconnected";
    pill.textContent = "disconnected";
  }

  // ---------------------------------------------------------------- the fast loop

  async function fast() {
    let answers;
    try {
      answers = await Promise.all([
        get("/health", FAST_TIMEOUT_MS, "json"),
        get("/metrics", FAST_TIMEOUT_MS, "text"),
        get(`/ui/recent?after=${state.seq}`, FAST_TIMEOUT_MS, "json"),
      ]);
      for (const [i, path] of ["/metrics", "/ui/recent"].entries()) {
        if (answers[i + 1].status !== 200) throw new Error(`${path} answered HTTP ${answers[i + 1].status}`);
      }
    } catch (error) {
      disconnected(error);
      setTimeout(fast, FAST_MS);
      return;
    }
    try {
      const [health, metrics, recent] = answers;
      connected(health);
      renderHealth(health.body);
      renderCounters(sample(Prom.parse(metrics.body)));
      renderRecent(recent.body);
    } catch (error) {
      console.error("console: rendering failed", error);
    }
    setTimeout(fast, FAST_MS);
  }

  function renderHealth(h) {
    $("partitions").textContent = h.partitions && h.partitions.length ? h.partitions.join(", ") : "none";
    $("policy").textContent = h.policy_version || dash;
    $("uptime").textContent = duration(h.uptime_seconds);
  }

  /** One snapshot of the counters the page shows, kept for the rates and the chart. */
  function sample(samples) {
    const s = {
      t: Date.now() / 1000,
      verbs: Prom.sumBy(samples, "trust_gate_decisions_total", "verb"),
      tiers: Prom.sumBy(samples, "trust_gate_tiers_total", "tier"),
      alerts: Prom.sumBy(samples, "resontinex_alerts_total", "kind"),
      dead: Prom.sumByMany(samples, "resontinex_dead_letters_total", ["topic", "code"]),
      latency: Prom.sumBy(samples, "resontinex_decision_latency_seconds_bucket", "le"),
      circuit: Prom.total(samples, "resontinex_circuit_open", null),
      errorRate: Prom.total(samples, "resontinex_circuit_error_rate", null),
      forwarded: Prom.total(samples, "resontinex_texts_forwarded_total"),
      returned: Prom.sumBy(samples, "resontinex_texts_returned_total", "status"),
      members: Prom.total(samples, "resontinex_trajectory_group_members", null),
      runs: Prom.sumByMany(samples, "resontinex_coordination_runs_total", ["strategy", "status"]),
      calls: Prom.sumBy(samples, "resontinex_coordination_calls_total", "outcome"),
    };
    const S = state.samples;
    const prev = S[S.length - 1];
    if (prev && Prom.sum(s.verbs) < Prom.sum(prev.verbs)) S.length = 0;  // the worker restarted: counters anew
    S.push(s);
    while (S.length && S[0].t < s.t - HISTORY_S - FAST_MS / 1000) S.shift();
    return s;
  }

  /** The newest snapshot at least RATE_WINDOW_S older than the last (else the oldest). */
  function windowBase() {
    const S = state.samples;
    const last = S[S.length - 1];
    let base = null;
    for (let i = S.length - 2; i >= 0; i--) {
      base = S[i];
      if (S[i].t <= last.t - RATE_WINDOW_S) break;
    }
    return base;
  }

  function renderCounters(s) {
    const base = windowBase();
    const dt = base ? s.t - base.t : 0;
    const verbRates = base ? Prom.rates(base.verbs, s.verbs, dt) : null;
    const tierRates = base ? Prom.rates(base.tiers, s.tiers, dt) : null;
    const alertRates = base ? Prom.rates(base.alerts, s.alerts, dt) : null;
    const total = Prom.sum(s.verbs);

    figure("kpi-rate", verbRates ? Prom.sum(verbRates) : null, fmtRate);
    figure("kpi-total", total, fmtInt);
    const p95 = base ? Prom.quantile(0.95, base.latency, s.latency) : null;
    figure("kpi-p95", p95 === null ? null : p95 * 1000, (ms) => ms.toFixed(ms < 10 ? 1 : 0));
    figure("kpi-alert-rate", alertRates ? Prom.sum(alertRates) : null, fmtRate);
    figure("kpi-dead-total", Prom.sum(s.dead), fmtInt);
    const circuit = $("kpi-circuit");
    circuit.textContent = s.circuit === null ? dash : s.circuit >= 1 ? "OPEN" : "closed";
    circuit.classList.toggle("bad", s.circuit >= 1);
    circuit.title = s.errorRate === null ? "" : `error rate over its window: ${fmtPct(s.errorRate)}`;

    shareTable("verbs-table", VERBS, s.verbs, verbRates);
    shareTable("tiers-table", TIERS, s.tiers, tierRates);
    stackBar("tier-bar", TIERS, s.tiers);
    chips("alert-kinds", Object.entries(s.alerts).filter(([, n]) => n > 0).map(([k, n]) => [k, n]),
      "no alerts raised since start");
    chips("dead-codes", Object.entries(s.dead).filter(([, n]) => n > 0)
      .map(([k, n]) => [k.split("\u0000").join(" · "), n]), "no dead letters since start");
    chips("coord-runs", Object.entries(s.runs).filter(([, n]) => n > 0)
      .map(([k, n]) => ["runs " + k.split("\u0000").join(" · "), n])
      .concat(Object.entries(s.calls).filter(([, n]) => n > 0).map(([k, n]) => ["API calls " + k, n])),
      "no coordination runs since start");

    figure("traj-forwarded", s.forwarded, fmtInt);
    const fw = base ? Prom.rates({ f: base.forwarded }, { f: s.forwarded }, dt) : null;
    figure("traj-rate", fw ? fw.f : null, fmtRate);
    figure("traj-scored", s.returned.scored || 0, fmtInt);
    figure("traj-timeout", s.returned.timeout || 0, fmtInt);
    figure("traj-members", s.members === null || s.members < 0 ? null : s.members, fmtInt);

    drawChart();
  }

  function ordered(known, counts) {
    return known.concat(Object.keys(counts).filter((k) => !known.includes(k)).sort());
  }

  function shareTable(id, known, counts, rates) {
    const all = Prom.sum(counts);
    const rows = ordered(known, counts).map((key, i) => el("tr", { "data-key": key },
      el("td", {}, el("i", { style: `display:inline-block;width:10px;height:10px;margin-right:6px;background:${color(key, i)}` }), key),
      el("td", { class: "num", text: fmtInt(counts[key] || 0) }),
      el("td", { class: "num", text: all ? fmtPct((counts[key] || 0) / all) : dash }),
      el("td", { class: "num", text: rates ? fmtRate(rates[key] || 0) : dash })));
    fill(id, rows, "nothing yet");
  }

  function stackBar(id, known, counts) {
    const all = Prom.sum(counts);
    $(id).replaceChildren(...ordered(known, counts).filter((k) => counts[k] > 0).map((key, i) =>
      el("div", { title: `${key}: ${fmtInt(counts[key])} (${fmtPct(counts[key] / all)})`,
        style: `width:${(100 * counts[key] / all).toFixed(3)}%;background:${color(key, i)}` })));
  }

  function chips(id, entries, emptyText) {
    $(id).replaceChildren(...(entries.length
      ? entries.sort((a, b) => b[1] - a[1]).map(([label, n]) => el("span", { class: "chip", text: `${label}: ${fmtInt(n)}` }))
      : [el("span", { class: "note", text: emptyText })]));
  }

  /** decisions/s by verb between consecutive snapshots, stacked, over the last HISTORY_S. */
  function drawChart() {
    const svg = $("chart-rate");
    const W = 720, H = 180, L = 44, R = 8, T = 8, B = 20;
    const S = state.samples;
    const now = S.length ? S[S.length - 1].t : Date.now() / 1000;
    const points = [];
    for (let i = 1; i < S.length; i++) {
      const r = Prom.rates(S[i - 1].verbs, S[i].verbs, S[i].t - S[i - 1].t);
      if (r) points.push({ t: S[i].t, r });
    }
    const verbs = ordered(VERBS, Object.assign({}, ...points.map((p) => p.r)));
    const max = niceCeil(Math.max(1, ...points.map((p) => Prom.sum(p.r))));
    const x = (t) => L + (W - L - R) * (1 - (now - t) / HISTORY_S);
    const y = (v) => H - B - (H - T - B) * (v / max);
    const nodes = [];
    for (const f of [0, 0.5, 1]) {
      nodes.push(svgEl("line", { class: "grid", x1: L, x2: W - R, y1: y(max * f), y2: y(max * f) }));
      nodes.push(svgEl("text", { x: L - 4, y: y(max * f) + 4, "text-anchor": "end", text: fmtRate(max * f) }));
    }
    for (const [label, t] of [["−5 min", now - HISTORY_S], ["−2.5 min", now - HISTORY_S / 2], ["now", now]]) {
      nodes.push(svgEl("text", { x: x(t), y: H - 5, "text-anchor": t === now ? "end" : t === now - HISTORY_S ? "start" : "middle", text: label }));
    }
    if (points.length) {
      const below = points.map(() => 0);
      verbs.forEach((verb, vi) => {
        const above = points.map((p, i) => below[i] + (p.r[verb] || 0));
        if (above.some((v, i) => v > below[i])) {
          const upper = points.map((p, i) => `${x(p.t).toFixed(1)},${y(above[i]).toFixed(1)}`);
          const lower = points.map((p, i) => `${x(p.t).toFixed(1)},${y(below[i]).toFixed(1)}`).reverse();
          nodes.push(svgEl("polygon", { points: upper.concat(lower).join(" "), fill: color(verb, vi), "fill-opacity": 0.85,
            "data-verb": verb }));
        }
        above.forEach((v, i) => { below[i] = v; });
      });
    } else {
      nodes.push(svgEl("text", { x: W / 2, y: H / 2, "text-anchor": "middle", text: "collecting: two readings needed" }));
    }
    svg.replaceChildren(...nodes);
    $("legend-verbs").replaceChildren(...verbs.map((verb, i) =>
      el("span", {}, el("i", { style: `background:${color(verb, i)}` }), verb)));
  }

  function niceCeil(v) {
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  // ---------------------------------------------------------------- alerts and dead letters

  function renderRecent(page) {
    $("worker").textContent = page.worker || location.origin;
    for (const node of document.querySelectorAll(".capacity")) node.textContent = page.capacity;
    if (page.seq < state.seq) {  // the worker restarted and numbers anew: read all it keeps next time
      state.seq = 0;
      state.alerts = [];
      state.dead = [];
      return;
    }
    const seen = state.seq;
    state.seq = page.seq;
    if (!page.alerts.length && !page.dead_letters.length && seen) return;
    state.alerts = page.alerts.slice().reverse().concat(state.alerts).slice(0, KEEP_ROWS);
    state.dead = page.dead_letters.slice().reverse().concat(state.dead).slice(0, KEEP_ROWS);
    const fresh = (row) => (seen && row.seq > seen ? "fresh" : null);
    fill("alerts-table", state.alerts.map((a) => el("tr", { class: fresh(a), "data-seq": a.seq, "data-kind": a.kind },
      el("td", {}, when(a.queued_at)),
      el("td", { class: `sev-${a.severity}`, text: a.severity || dash }),
      el("td", { text: a.undecodable ? "(not JSON)" : a.kind }),
      el("td", { text: a.tenant || a.key || dash }),
      el("td", { text: a.undecodable ? a.preview : a.message }),
      el("td", {}, el("code", { text: a.source_event_id || dash })))), "no alert raised by this worker since it started");
    fill("dead-table", state.dead.map((d) => el("tr", { class: fresh(d), "data-seq": d.seq, "data-code": d.code },
      el("td", {}, when(d.queued_at)),
      el("td", {}, el("strong", { text: d.undecodable ? "(not JSON)" : d.code })),
      el("td", { text: d.undecodable ? dash : `${d.source_topic} p${d.source_partition} @${d.offset}` }),
      el("td", {}, el("code", { text: d.source_key === null || d.source_key === undefined ? "null" : d.source_key })),
      el("td", { text: d.message || dash }),
      el("td", {}, el("code", { title: `${d.value_bytes} bytes`, text: d.preview }), el("small", { text: ` ${d.value_bytes} B` })))),
      "no dead letter written by this worker since it started");
    if (page.truncated) console.warn("console: some alerts or dead letters were evicted before this page read them");
  }

  // ---------------------------------------------------------------- the slow loop: status pages

  async function slow() {
    const pages = [["/stats/trust", renderTrust], ["/budget/status", renderBudgets], ["/router/status", renderRouter],
      ["/coordination/status", renderCoordination], ["/enhancements/status", renderEnhancements]];
    await Promise.all(pages.map(async ([path, render]) => {
      let answer;
      try {
        answer = await get(path, SLOW_TIMEOUT_MS, "json");
      } catch (error) {
        return;  // the fast loop reports a lost worker
      }
      if (answer.status !== 200) return;
      try {
        render(answer.body);
      } catch (error) {
        console.error(`console: rendering ${path} failed`, error);
      }
    }));
    setTimeout(slow, SLOW_MS);
  }

  function renderTrust(body) {
    const rows = Object.keys(body.tenants).sort().map((tenant) => {
      const windows = body.tenants[tenant];
      const w = windows[windows.length - 1];
      const tiers = Object.entries(w.tiers || {}).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(" · ");
      return el("tr", { "data-tenant": tenant },
        el("td", { text: tenant }), el("td", {}, when(w.start)),
        el("td", { class: "num", text: fmtInt(w.requests) }), el("td", { class: "num", text: fmtNum(w.score_mean, 4) }),
        el("td", { text: tiers || dash }), el("td", { class: "num", text: fmtInt(w.floor_violations || 0) }),
        el("td", { class: "num", text: fmtInt(w.entropy_flags || 0) }));
    });
    fill("trust-table", rows, "no decisions in the last hour");
  }

  function renderBudgets(body) {
    const rows = body.budgets.map((b) => {
      const u = Number(b.utilization) || 0;
      return el("tr", { "data-scope": b.scope },
        el("td", { text: b.scope }), el("td", { text: b.period }),
        el("td", {}, el("span", { class: "bar", "data-status": b.status, title: `${fmtPct(u)} of the budget spent` },
          el("div", { style: `width:${Math.min(100, u * 100).toFixed(2)}%` })), el("span", { text: fmtPct(u) })),
        el("td", { class: "num", text: `${fmtUsd(b.spent_usd)} / ${fmtUsd(b.limit_usd)}` }),
        el("td", { class: "num", text: fmtUsd(b.remaining_usd) }),
        el("td", { class: "num", text: b.limit_tokens ? `${fmtInt(b.tokens)} / ${fmtInt(b.limit_tokens)}` : fmtInt(b.tokens || 0) }),
        el("td", { class: `status-${b.status}`, text: b.status }),
        el("td", { title: b.period_end, text: dateTime(b.period_end) }));
    });
    fill("budgets-table", rows, "no budget configured (energy_governance.yaml)");
  }

  function renderRouter(body) {
    const tenants = Object.keys(body.tenants).sort();
    $("router-body").replaceChildren(...(tenants.length ? tenants.map((t) => routerCard(t, body.tenants[t]))
      : [el("p", { class: "note", text: "no routed decisions yet (a request is routed when it lists routing.providers)" })]));
  }

  function routerCard(tenant, st) {
    const s = st.strategist, ex = st.executor, au = st.auditor, an = st.anomalies || {};
    const violations = Prom.sum(au.violations || {});
    const meta = el("dl", { class: "meta" });
    for (const [k, v] of [["policy", st.policy], ["ε", fmtNum(s.epsilon, 3)],
      ["decisions", fmtInt(s.decision_count)], ["explore / exploit", `${fmtInt(s.explore)} / ${fmtInt(s.exploit)}`],
      ["outcomes", fmtInt(ex.total_outcomes)], ["success", ex.success_rate === null ? dash : fmtPct(ex.success_rate)],
      ["avg cost (USD)", fmtUsd(ex.avg_cost_usd)], ["avg latency (ms)", fmtNum(ex.avg_latency_ms, 0)],
      ["awaiting outcome", fmtInt(ex.pending_feedback)], ["expired", fmtInt(ex.expired)],
      ["violations", fmtInt(violations)], ["anomalies", `q jumps ${an.q_jump || 0}, success ${an.success_rate || 0}` +
        ((an.underperforming || []).length ? `, under: ${an.underperforming.join(", ")}` : "")]]) {
      meta.append(el("dt", { text: k }), el("dd", { text: v }));
    }
    const card = el("div", { class: "tenant-card router-tenant", "data-tenant": tenant }, el("h3", { text: tenant }), meta);

    const shares = {};
    for (const row of Object.values(s.observations || {})) {
      for (const [pid, n] of Object.entries(row)) shares[pid] = (shares[pid] || 0) + n;
    }
    const all = Prom.sum(shares);
    const q = s.q_values || {};
    const states = Object.keys(q).sort();
    if (!all && !states.length) {
      card.append(el("p", { class: "note", text: "no outcomes yet: arm shares and Q-values appear with the first outcomes" }));
      return card;
    }
    const arms = el("div", { class: "arms" });
    for (const [pid, n] of Object.entries(shares).sort((a, b) => b[1] - a[1])) {
      arms.append(el("span", { text: pid }),
        el("span", { class: "bar", title: `${fmtInt(n)} of ${fmtInt(all)} outcomes` },
          el("div", { style: `width:${(100 * n / all).toFixed(2)}%` })),
        el("span", { text: `${fmtPct(n / all)} (${fmtInt(n)})` }));
    }
    card.append(el("h3", {}, "Arm shares ", el("small", { text: "(outcomes learnt from, per provider)" })), arms);

    const providers = [...new Set(states.flatMap((k) => Object.keys(q[k])))].sort();
    const table = el("table", { class: "q-table" },
      el("thead", {}, el("tr", {}, el("th", { text: "state" }), ...providers.map((p) => el("th", { class: "num", text: p })))),
      el("tbody", {}, ...states.map((k) => {
        const values = providers.map((p) => q[k][p]);
        const best = Math.max(...values.filter((v) => v !== null && v !== undefined));
        return el("tr", {}, el("td", {}, el("code", { text: k })), ...providers.map((p, i) => {
          const v = values[i];
          const n = ((s.observations || {})[k] || {})[p];
          return el("td", { class: v === best ? "num best" : "num", title: `${n || 0} outcomes`,
            text: v === null || v === undefined ? dash : `${v.toFixed(3)} (${n || 0})` });
        }));
      })));
    card.append(el("h3", {}, "Q-values ", el("small", { text: "(value estimate, outcomes in brackets; best per state in bold)" })), table);
    if (st.candidate) {
      card.append(el("p", { class: "note", text: `canary candidate ${st.candidate.enhancement_id} (${st.candidate.policy}, activation ${st.candidate.activation})` }));
    }
    return card;
  }

  function renderCoordination(body) {
    const meta = $("coord-meta");
    const breakers = Object.entries(body.breakers || {}).map(([m, b]) => `${m}: ${typeof b === "object" ? (b.state || JSON.stringify(b)) : b}`);
    meta.replaceChildren();
    for (const [k, v] of [["Messages API", body.api], ["runs in flight", fmtInt(body.runs_in_flight || 0)],
      ["embedding model", body.embedding_model || dash], ["breakers", breakers.length ? breakers.join(", ") : "none"]]) {
      meta.append(el("dt", { text: k }), el("dd", { text: v }));
    }
    const rows = Object.keys(body.tenants).sort().map((tenant) => {
      const t = body.tenants[tenant];
      const strategies = Object.entries(t.strategies || {}).map(([name, h]) =>
        `${name} (${h.samples}${h.drifting ? ", drifting" : ""}${h.ineffective ? ", ineffective" : ""})`).join(", ");
      return el("tr", { "data-tenant": tenant }, el("td", { text: tenant }), el("td", { class: "num", text: fmtInt(t.runs) }),
        el("td", { class: "num", text: fmtInt(t.measured_runs) }), el("td", { class: "num", text: fmtNum(t.gamma_mean, 3) }),
        el("td", { class: "num", text: fmtUsd(t.spent_this_hour_usd) }), el("td", { text: strategies || dash }));
    });
    fill("coord-table", rows, "no coordination runs in the state kept");
  }

  function renderEnhancements(body) {
    const rows = [];
    for (const tenant of Object.keys(body.tenants).sort()) {
      for (const e of body.tenants[tenant].enhancements) {
        rows.push(el("tr", { "data-id": e.enhancement_id }, el("td", { text: tenant }), el("td", {}, el("code", { text: e.enhancement_id })),
          el("td", { text: e.kind }), el("td", { text: e.state || dash }), el("td", { text: e.phase || dash }),
          el("td", { class: "num", text: e.share === null || e.share === undefined ? dash : fmtPct(e.share) }),
          el("td", { class: "num", text: fmtInt(e.deactivations || 0) })));
      }
    }
    fill("enh-table", rows, "no enhancements submitted");
  }

  // ---------------------------------------------------------------- start

  fast();
  slow();
})();
