// The infralog console: one page over infra-query's /api (see query/src/http/api.rs).
// Every view's state lives in the URL, so a copied link opens the same view.
import { h, render } from "preact";
import { useState, useEffect, useRef, useMemo, useCallback } from "preact/hooks";
import htm from "htm";

const html = htm.bind(h);
const ROW_HEIGHT = 22;
const TAIL_BUFFER = 2000;
const RANGES = ["15m", "1h", "6h", "24h", "7d", "30d", "all"];

// ---- state in the URL -------------------------------------------------------------

const DEFAULTS = { view: "search", q: "", sql: "", range: "24h", from: "", to: "" };

function readUrl() {
  const p = new URLSearchParams(location.search);
  const s = { ...DEFAULTS };
  for (const k of Object.keys(DEFAULTS)) if (p.has(k)) s[k] = p.get(k);
  return s;
}

function writeUrl(s) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(s)) if (v !== "" && v !== DEFAULTS[k]) p.set(k, v);
  const url = location.pathname + (p.toString() ? "?" + p : "");
  if (url !== location.pathname + location.search) history.replaceState(null, "", url);
}

// The request's time window: an explicit from/to (ms) wins over the preset range.
function rangeParams(s) {
  if (s.from || s.to) return { from: s.from, to: s.to };
  if (s.range === "all") return {};
  return { from: s.range };
}

function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") p.set(k, v);
  return p.toString();
}

// ---- fetching -----------------------------------------------------------------------

async function getJson(path, params, signal) {
  const r = await fetch(`${path}?${qs(params)}`, { signal });
  const body = await r.json();
  if (!r.ok || body.error) throw new Error(body.error || r.statusText);
  return body;
}

// Reads NDJSON as it arrives; `onLines` gets each chunk's parsed lines.
async function streamNdjson(path, params, signal, onLines) {
  const r = await fetch(`${path}?${qs(params)}`, { signal });
  if (!r.ok) {
    let msg = r.statusText;
    try { msg = (await r.json()).error || msg; } catch (_) {}
    throw new Error(msg);
  }
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let rest = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (value) rest += decoder.decode(value, { stream: true });
    const lines = rest.split("\n");
    rest = done ? "" : lines.pop();
    const parsed = lines.filter((l) => l.trim()).map((l) => JSON.parse(l));
    const error = parsed.find((l) => l && l.error && Object.keys(l).length === 1);
    if (error) throw new Error(error.error);
    if (parsed.length) onLines(parsed, r);
    if (done) return r;
  }
}

// ---- formatting ---------------------------------------------------------------------

const pad = (n, w = 2) => String(n).padStart(w, "0");
function fmtTs(us) {
  if (us === null || us === undefined) return "";
  const d = new Date(Math.floor(us / 1000));
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}.` +
    `${pad(Math.floor(us % 1000000), 6)}`;
}
const fmtValue = (v) => (v === null || v === undefined ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));

function download(name, text, type) {
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([text], { type }));
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function toCsv(rows) {
  if (!rows.length) return "";
  const cols = Object.keys(rows[0]);
  const cell = (v) => {
    const s = fmtValue(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [cols.join(","), ...rows.map((r) => cols.map((c) => cell(r[c])).join(","))].join("\n") + "\n";
}

// ---- pieces -------------------------------------------------------------------------

function Histogram({ params, onZoom }) {
  const box = useRef(null);
  const [info, setInfo] = useState("");
  useEffect(() => {
    const ctl = new AbortController();
    let plot = null;
    const xs = [], ys = [];
    let head = null;
    const draw = () => {
      if (!head) return;
      const step = head.step;
      const points = new Map();
      for (let t = Math.floor(head.from / step) * step; t < head.to; t += step) points.set(t, 0);
      xs.forEach((t, i) => points.set(t, (points.get(t) || 0) + ys[i]));
      const sorted = [...points.entries()].sort((a, b) => a[0] - b[0]);
      const data = [sorted.map((p) => p[0] / 1000), sorted.map((p) => p[1])];
      if (plot) { plot.setData(data); return; }
      const width = box.current.clientWidth || 800;
      plot = new uPlot({
        width, height: 120,
        cursor: { drag: { x: true, y: false, setScale: false } },
        legend: { show: false },
        axes: [{ stroke: "#889" }, { stroke: "#889", size: 50 }],
        // The list shows UTC; so does the axis.
        tzDate: (t) => uPlot.tzDate(new Date(t * 1000), "Etc/UTC"),
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } },
        series: [{}, { label: "lines", stroke: "#6b8fd6", fill: "rgba(107,143,214,0.5)",
          paths: uPlot.paths.bars({ size: [0.9, 100] }), points: { show: false } }],
        hooks: { setSelect: [(u) => {
          if (u.select.width < 3) return;
          const a = u.posToVal(u.select.left, "x"), b = u.posToVal(u.select.left + u.select.width, "x");
          u.setSelect({ width: 0, height: 0 }, false);
          onZoom(Math.floor(a * 1000), Math.ceil(b * 1000));
        }] },
      }, data, box.current);
    };
    setInfo("counting…");
    streamNdjson("/api/hits", params, ctl.signal, (lines) => {
      for (const l of lines) {
        if (l.step) head = l;
        else if (l.done) setInfo(`${l.total.toLocaleString()} lines`);
        else { xs.push(l.t); ys.push(l.n); }
      }
      draw();
    }).catch((e) => { if (e.name !== "AbortError") setInfo(`histogram: ${e.message}`); });
    return () => { ctl.abort(); if (plot) plot.destroy(); box.current && (box.current.innerHTML = ""); };
  }, [JSON.stringify(params)]);
  return html`<div><div id="hist" ref=${box}></div><div class="muted" id="hits-total" style="padding:0 10px">${info}</div></div>`;
}

function Facets({ params, onPick }) {
  const [facets, setFacets] = useState(null);
  useEffect(() => {
    const ctl = new AbortController();
    setFacets(null);
    getJson("/api/fields", params, ctl.signal).then(setFacets).catch(() => {});
    return () => ctl.abort();
  }, [JSON.stringify(params)]);
  if (!facets) return html`<aside class="muted">facets…</aside>`;
  const names = { hostname: "host", source: "source", severity: "severity", unit: "unit", process_name: "process" };
  return html`<aside id="facets">${Object.entries(facets).filter(([field]) => field !== "from_stats").map(([field, values]) => html`
    <h4>${names[field] || field}</h4>
    ${values.filter((v) => v.value !== null).map((v) => html`
      <div class="facet" data-field=${field} onClick=${() => onPick(names[field], v.value)}>
        <span>${v.value}</span><span class="muted num">${v.n.toLocaleString()}</span></div>`)}`)}
  </aside>`;
}

// A list that only renders the rows in view; expanded rows are shown below the list
// position they open at (their height is added to the scroll space).
function LogList({ rows, onContext, id }) {
  const box = useRef(null);
  const [top, setTop] = useState(0);
  const [open, setOpen] = useState(null);
  const height = box.current ? box.current.clientHeight : 600;
  const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - 10);
  const last = Math.min(rows.length, first + Math.ceil(height / ROW_HEIGHT) + 20);
  const visible = [];
  for (let i = first; i < last; i++) visible.push(i);
  return html`<div class="list" id=${id} ref=${box} onScroll=${(e) => setTop(e.target.scrollTop)}>
    <div style=${`height:${rows.length * ROW_HEIGHT}px;position:relative`}>
      <div style=${`position:absolute;top:${first * ROW_HEIGHT}px;left:0;right:0`}>
        ${visible.map((i) => {
          const r = rows[i];
          return html`<div key=${i}>
            <div class="row" data-ts=${r.ts} data-i=${i} onClick=${() => setOpen(open === i ? null : i)}>
              <span class="t">${fmtTs(r.ts)}</span><span class="h">${r.hostname}</span>
              <span class=${`sev-${r.severity}`}>${(r.severity || "").slice(0, 4)}</span>
              <span>${r.process_name || ""}</span><span class="m">${r.message}</span></div>
            ${open === i && html`<div class="detail">
              <button class="ctx" onClick=${() => onContext(r)}>context</button>
              <table><tbody>${Object.entries(r).map(([k, v]) => html`<tr><td>${k}</td><td>${fmtValue(v)}</td></tr>`)}</tbody></table>
            </div>`}</div>`;
        })}
      </div></div></div>`;
}

function Context({ row, onClose }) {
  const [scope, setScope] = useState(row.source ? "source" : "host");
  const [n, setN] = useState(10);
  const [data, setData] = useState(null);
  const [err, setErr] = useState("");
  useEffect(() => {
    const ctl = new AbortController();
    getJson("/api/context", { host: row.hostname, source: row.source, ts: row.ts, before: n, after: n, scope }, ctl.signal)
      .then(setData).catch((e) => e.name !== "AbortError" && setErr(e.message));
    return () => ctl.abort();
  }, [scope, n]);
  const line = (r, anchor) => html`<div class=${"row ctx-row" + (anchor ? " ctx-anchor" : "")} data-ts=${r.ts}>
    <span class="t">${fmtTs(r.ts)}</span><span class="h">${r.hostname}</span><span>${r.source}</span>
    <span class=${`sev-${r.severity}`}>${(r.severity || "").slice(0, 4)}</span><span class="m">${r.message}</span></div>`;
  // A linked context knows only the time: every line at it is the anchor.
  const isAnchor = (r) => r.ts === row.ts && (row.message == null || r.message === row.message);
  return html`<div class="modal" id="context">
    <div class="bar"><b>Context</b><span class="muted">${row.hostname} · ${row.source} · ${fmtTs(row.ts)}</span>
      <select value=${scope} onChange=${(e) => setScope(e.target.value)}>
        <option value="source">same host and source</option><option value="host">same host</option><option value="fleet">all hosts</option></select>
      <button id="ctx-more" onClick=${() => setN(n * 2)}>load more</button>
      <a href=${`?${qs({ view: "context", host: row.hostname, source: row.source, ts: row.ts })}`} target="_blank">link</a>
      <span class="spacer" style="flex:1"></span><button onClick=${onClose}>close</button></div>
    ${err && html`<div class="err">${err}</div>`}
    <div class="body">${data && html`${data.before.map((r) => line(r, false))}${data.at.map((r) => line(r, isAnchor(r)))}${data.after.map((r) => line(r, false))}`}</div>
  </div>`;
}

function Export({ rows, name }) {
  return html`<span>
    <button id="export-csv" onClick=${() => download(`${name}.csv`, toCsv(rows), "text/csv")}>CSV</button>
    <button id="export-json" onClick=${() => download(`${name}.json`, JSON.stringify(rows, null, 1), "application/json")}>JSON</button></span>`;
}

// ---- views --------------------------------------------------------------------------

function SearchView({ s, set, onContext }) {
  const [text, setText] = useState(s.q);
  const [rows, setRows] = useState([]);
  const [status, setStatus] = useState("");
  const [doneKey, setDoneKey] = useState(null);
  const [err, setErr] = useState("");
  useEffect(() => setText(s.q), [s.q]);
  const params = useMemo(() => ({ q: s.q, ...rangeParams(s) }), [s.q, s.range, s.from, s.to]);
  useEffect(() => {
    const ctl = new AbortController();
    const started = performance.now();
    let got = [];
    let firstMs = null;
    setRows([]); setErr(""); setStatus("searching…");
    streamNdjson("/api/query", { ...params, limit: 5000 }, ctl.signal, (lines) => {
      got = got.concat(lines);
      setRows(got);
      if (firstMs === null) firstMs = Math.round(performance.now() - started);
      setStatus(`${got.length.toLocaleString()} rows so far…`);
    }).then(() => {
      setStatus(got.length
        ? `${got.length.toLocaleString()} rows · first after ${firstMs} ms, all after ${Math.round(performance.now() - started)} ms`
        : "no rows");
      // The browser test waits for this: the rows shown are the whole answer.
      setDoneKey(JSON.stringify(params));
    })
      .catch((e) => { if (e.name !== "AbortError") { setErr(e.message); setStatus(""); } });
    return () => ctl.abort();
  }, [JSON.stringify(params)]);
  const saved = JSON.parse(localStorage.getItem("infralog.saved") || "[]");
  const pick = (field, value) => {
    const term = `${field}:${/\s/.test(value) ? JSON.stringify(value) : value}`;
    set({ q: (s.q ? s.q + " " : "") + term });
  };
  return html`<div>
    <form class="bar" onSubmit=${(e) => { e.preventDefault(); set({ q: text }); }}>
      <input class="q" id="q" value=${text} placeholder="words  host:web-1  severity>=warning  -heartbeat" onInput=${(e) => setText(e.target.value)} />
      <button id="run" type="submit">Search</button>
      <select id="range" value=${s.from || s.to ? "custom" : s.range} onChange=${(e) => set({ range: e.target.value, from: "", to: "" })}>
        ${(s.from || s.to) && html`<option value="custom">custom</option>`}
        ${RANGES.map((r) => html`<option value=${r}>${r === "all" ? "all time" : "last " + r}</option>`)}</select>
      ${(s.from || s.to) && html`<span class="muted" id="custom-range">${fmtTs(s.from * 1000)} → ${fmtTs(s.to * 1000)}</span>`}
      <button type="button" id="save" onClick=${() => { const name = prompt("Save this query as"); if (name) { localStorage.setItem("infralog.saved", JSON.stringify([...saved, { name, q: s.q }])); set({}); } }}>save</button>
      ${saved.length > 0 && html`<select id="saved" onChange=${(e) => e.target.value && set({ q: e.target.value })}>
        <option value="">saved…</option>${saved.map((x) => html`<option value=${x.q}>${x.name}</option>`)}</select>`}
      <${Export} rows=${rows} name="logs" />
    </form>
    ${err && html`<div class="err" id="error">${err}</div>`}
    <main class="search">
      <${Facets} params=${params} onPick=${pick} />
      <div class="results">
        <${Histogram} params=${params} onZoom=${(a, b) => set({ from: String(a), to: String(b) })} />
        <div class="muted" id="status" data-done=${doneKey === JSON.stringify(params) ? "1" : "0"} style="padding:2px 10px">${status}</div>
        <${LogList} rows=${rows} onContext=${onContext} id="rows" />
      </div>
    </main></div>`;
}

function SqlView({ s, set }) {
  const [text, setText] = useState(s.sql || "SELECT hostname, count(*) AS lines FROM logs GROUP BY hostname ORDER BY lines DESC");
  const [result, setResult] = useState({ cols: [], rows: [] });
  const [err, setErr] = useState("");
  useEffect(() => {
    if (!s.sql) return;
    const ctl = new AbortController();
    let rows = [];
    setErr(""); setResult({ cols: [], rows: [] });
    streamNdjson("/api/query", { sql: s.sql }, ctl.signal, (lines, r) => {
      rows = rows.concat(lines);
      setResult({ cols: JSON.parse(r.headers.get("x-columns") || "[]"), rows });
    }).then((r) => r && setResult({ cols: JSON.parse(r.headers.get("x-columns") || "[]"), rows }))
      .catch((e) => e.name !== "AbortError" && setErr(e.message));
    return () => ctl.abort();
  }, [s.sql]);
  return html`<div>
    <form class="bar" onSubmit=${(e) => { e.preventDefault(); set({ sql: text }); }}>
      <textarea class="sql" id="sql" value=${text} onInput=${(e) => setText(e.target.value)}
        onKeyDown=${(e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); set({ sql: text }); } }}></textarea>
      <button id="run-sql" type="submit">Run (Ctrl+Enter)</button><${Export} rows=${result.rows} name="query" />
      <span class="muted">${result.rows.length} rows</span></form>
    ${err && html`<div class="err" id="error">${err}</div>`}
    <div class="pane"><table class="grid" id="sql-result"><thead><tr>${result.cols.map((c) => html`<th>${c}</th>`)}</tr></thead>
      <tbody>${result.rows.slice(0, 2000).map((r) => html`<tr>${result.cols.map((c) => html`<td>${fmtValue(r[c])}</td>`)}</tr>`)}</tbody></table></div>
  </div>`;
}

function Spark({ values }) {
  const max = Math.max(1, ...values);
  const d = values.map((v, i) => `${i ? "L" : "M"}${(i * 80) / (values.length - 1 || 1)},${18 - (v / max) * 16}`).join("");
  return html`<svg class="spark" width="80" height="20"><path d=${d} /></svg>`;
}

function PatternsView({ s, set }) {
  const [data, setData] = useState(null);
  const [err, setErr] = useState("");
  useEffect(() => {
    const ctl = new AbortController();
    setData(null); setErr("");
    getJson("/api/templates", { q: s.q, ...rangeParams(s) }, ctl.signal).then(setData).catch((e) => e.name !== "AbortError" && setErr(e.message));
    return () => ctl.abort();
  }, [s.q, s.range, s.from, s.to]);
  return html`<div class="pane">
    <div class="bar"><span class="muted">Templates of the lines matching <code>${s.q || "everything"}</code>, exact counts over the range; click one to search its lines.</span>
      ${data && html`<${Export} rows=${data.templates} name="patterns" />`}</div>
    ${err && html`<div class="err" id="error">${err}</div>`}
    ${!data && !err && html`<div class="muted">counting…</div>`}
    ${data && html`<table class="grid" id="patterns"><thead><tr><th class="num">lines</th><th>trend</th><th>template</th><th>example</th></tr></thead>
      <tbody>${data.templates.map((t) => html`<tr class="click pattern" data-id=${t.template_id} onClick=${() => set({ view: "search", q: `template:${t.template_id}` })}>
        <td class="num">${t.n.toLocaleString()}</td><td><${Spark} values=${t.spark} /></td>
        <td class="mono">${t.text || "(text not written yet)"}</td><td class="mono muted">${t.example || ""}</td></tr>`)}</tbody></table>`}
  </div>`;
}

function AnomaliesView({ s, onContext }) {
  const [data, setData] = useState(null);
  const [err, setErr] = useState("");
  useEffect(() => {
    const ctl = new AbortController();
    getJson("/api/anomalies", rangeParams(s), ctl.signal).then(setData).catch((e) => e.name !== "AbortError" && setErr(e.message));
    return () => ctl.abort();
  }, [s.range, s.from, s.to]);
  return html`<div class="pane">
    ${err && html`<div class="err" id="error">${err}</div>`}
    ${!data && !err && html`<div class="muted">loading…</div>`}
    ${data && html`<div class="bar"><span class="muted">${data.anomalies.length} anomalies</span><${Export} rows=${data.anomalies} name="anomalies" /></div>
      <table class="grid" id="anomalies"><thead><tr><th>window</th><th>host</th><th>kind</th><th>severity</th><th>explanation</th><th>example</th><th></th></tr></thead>
      <tbody>${data.anomalies.map((a) => html`<tr class="anomaly" data-kind=${a.kind}>
        <td class="mono">${fmtTs(a.ts)}</td><td>${a.hostname}</td><td>${a.kind}</td><td class=${`sev-${a.severity}`}>${a.severity}</td>
        <td>${a.explanation}</td><td class="mono muted">${a.example || ""}</td>
        <td><button onClick=${() => onContext({ hostname: a.hostname, source: a.source, ts: a.ts, message: null }, "host")}>context</button></td></tr>`)}</tbody></table>`}
  </div>`;
}

// One uPlot chart of a value per hour, a series per host.
function HostChart({ hours, value, title }) {
  const box = useRef(null);
  useEffect(() => {
    const hosts = [...new Set(hours.map((r) => r.hostname))].sort();
    const ts = [...new Set(hours.map((r) => r.t))].sort((a, b) => a - b);
    const at = new Map(ts.map((t, i) => [t, i]));
    const series = hosts.map(() => ts.map(() => 0));
    for (const r of hours) series[hosts.indexOf(r.hostname)][at.get(r.t)] += r[value];
    const colors = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];
    const plot = new uPlot({
      width: box.current.clientWidth || 800, height: 180, title,
      tzDate: (t) => uPlot.tzDate(new Date(t * 1000), "Etc/UTC"),
      axes: [{ stroke: "#889" }, { stroke: "#889", size: 60 }],
      series: [{}, ...hosts.map((h, i) => ({ label: h, stroke: colors[i % colors.length], width: 1.5 }))],
    }, [ts.map((t) => t / 1000), ...series], box.current);
    return () => plot.destroy();
  }, [hours, value]);
  return html`<div ref=${box}></div>`;
}

function TrendsView({ s, set }) {
  const [data, setData] = useState(null);
  const [err, setErr] = useState("");
  useEffect(() => {
    const ctl = new AbortController();
    getJson("/api/trends", rangeParams(s), ctl.signal).then(setData).catch((e) => e.name !== "AbortError" && setErr(e.message));
    return () => ctl.abort();
  }, [s.range, s.from, s.to]);
  const totals = new Map();
  for (const r of (data ? data.hours : [])) {
    const t = totals.get(r.hostname) || { lines: 0, bytes: 0, errors: 0 };
    t.lines += r.lines; t.bytes += r.bytes; t.errors += r.errors;
    totals.set(r.hostname, t);
  }
  return html`<div class="pane">
    ${err && html`<div class="err" id="error">${err}</div>`}
    ${!data && !err && html`<div class="muted">loading…</div>`}
    ${data && html`<div class="bar"><span class="muted">per host and hour, from the stats rollups; click a host to search its errors</span>
      <${Export} rows=${data.hours} name="trends" /></div>
      <table class="grid" id="trends"><thead><tr><th>host</th><th class="num">lines</th><th class="num">error lines</th><th class="num">message bytes</th></tr></thead>
      <tbody>${[...totals.entries()].sort().map(([h, t]) => html`<tr class="click host" data-host=${h} onClick=${() => set({ view: "search", q: `host:${h} severity>=err` })}>
        <td>${h}</td><td class="num">${t.lines.toLocaleString()}</td><td class="num">${t.errors.toLocaleString()}</td><td class="num">${t.bytes.toLocaleString()}</td></tr>`)}</tbody></table>
      ${data.hours.length > 0 && html`<${HostChart} hours=${data.hours} value="lines" title="lines per hour" /><${HostChart} hours=${data.hours} value="errors" title="error lines per hour" />`}`}
  </div>`;
}

function TailView({ s, set }) {
  const [text, setText] = useState(s.q);
  const [rows, setRows] = useState([]);
  const [paused, setPaused] = useState(false);
  const [state, setState] = useState("connecting…");
  const pausedRef = useRef(false);
  pausedRef.current = paused;
  useEffect(() => {
    const es = new EventSource(`/api/tail?${qs({ q: s.q })}`);
    es.onopen = () => setState("live");
    es.onerror = () => setState("reconnecting…");
    es.addEventListener("lines", (e) => {
      if (pausedRef.current) return;
      const lines = JSON.parse(e.data);
      setRows((old) => lines.slice().reverse().concat(old).slice(0, TAIL_BUFFER));
    });
    es.addEventListener("error", (e) => { if (e.data) setState(`error: ${e.data}`); });
    return () => es.close();
  }, [s.q]);
  return html`<div>
    <form class="bar" onSubmit=${(e) => { e.preventDefault(); set({ q: text }); }}>
      <input class="q" id="tail-q" value=${text} placeholder="filter the tail" onInput=${(e) => setText(e.target.value)} />
      <button type="submit">Filter</button>
      <button type="button" id="tail-pause" class=${paused ? "on" : ""} onClick=${() => setPaused(!paused)}>${paused ? "resume" : "pause"}</button>
      <button type="button" id="tail-clear" onClick=${() => setRows([])}>clear</button>
      <span class="muted" id="tail-state">${paused ? "paused" : state} · ${rows.length} lines (newest first, last ${TAIL_BUFFER} kept)</span></form>
    <${LogList} rows=${rows} onContext=${() => {}} id="tail-rows" />
  </div>`;
}

// ---- the page -----------------------------------------------------------------------

function App() {
  const [s, setS] = useState(readUrl);
  const [ctx, setCtx] = useState(() => {
    const p = new URLSearchParams(location.search);
    return p.get("view") === "context" ? { hostname: p.get("host"), source: p.get("source"), ts: Number(p.get("ts")), message: null } : null;
  });
  const [theme, setTheme] = useState(localStorage.getItem("infralog.theme") || "light");
  useEffect(() => { document.documentElement.dataset.theme = theme; localStorage.setItem("infralog.theme", theme); }, [theme]);
  useEffect(() => { if (s.view !== "context") writeUrl(s); }, [s]);
  const set = useCallback((patch) => setS((old) => ({ ...old, ...patch, view: patch.view || (old.view === "context" ? "search" : old.view) })), []);
  const tabs = [["search", "Search"], ["sql", "SQL"], ["patterns", "Patterns"], ["anomalies", "Anomalies"], ["trends", "Trends"], ["tail", "Live tail"]];
  const view = s.view === "context" ? "search" : s.view;
  return html`<div>
    <header><span class="brand">infralog</span>
      ${tabs.map(([v, label]) => html`<button class=${"tab" + (view === v ? " on" : "")} id=${`tab-${v}`} onClick=${() => set({ view: v })}>${label}</button>`)}
      <span class="spacer"></span>
      <button id="theme" onClick=${() => setTheme((t) => (t === "dark" ? "light" : "dark"))}>${theme === "dark" ? "light" : "dark"}</button></header>
    ${view === "search" && html`<${SearchView} s=${s} set=${set} onContext=${setCtx} />`}
    ${view === "sql" && html`<${SqlView} s=${s} set=${set} />`}
    ${view === "patterns" && html`<${PatternsView} s=${s} set=${set} />`}
    ${view === "anomalies" && html`<${AnomaliesView} s=${s} onContext=${setCtx} />`}
    ${view === "trends" && html`<${TrendsView} s=${s} set=${set} />`}
    ${view === "tail" && html`<${TailView} s=${s} set=${set} />`}
    ${ctx && html`<${Context} row=${ctx} onClose=${() => { setCtx(null); if (s.view === "context") set({ view: "search" }); }} />`}
  </div>`;
}

const root = document.getElementById("app");
root.textContent = "";
render(html`<${App} />`, root);
