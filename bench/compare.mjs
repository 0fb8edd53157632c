#!/usr/bin/env node
// Side-by-side table of benchmark medians: the peer systems (shared/peers, common/bench.mjs rows)
// and Outpost (cargo bench ... --jsonl rows), both in the same JSONL schema, one object per run:
//   {"system","layout","scenario","n","rep","sync_s","bytes_up","bytes_down",
//    "client_maxrss_kb","server_maxrss_kb", ["change_bytes"], ["error"]}
//
// usage: node bench/compare.mjs [--json] [--n 1000,10000] FILE.jsonl [FILE.jsonl ...]
//   --json   print the same data as JSON instead of markdown
//   --n      only these N (comma-separated); default: every N found
//
// Rows are grouped by (system, layout, scenario, n); medians are over the "ok" rows (no `error`).
// Which file a row came from does not matter: a row is Outpost's when its system is "outpost".
// Outpost rows with a `backend` other than "sqlite" or `nodes` above 1 are left out (with a warning).
import fs from "node:fs"

const OUTPOST = "outpost"
// The peers' driver writes its own system name on rows where the client printed no RESULT
// (error rows), the client's name otherwise: fold them together, as common/summarize.mjs does.
const SYSTEM_ALIASES = { automerge: "automerge-repo", "automerge-rs": "automerge-rs-inproc" }
// In-process lower bounds (no network, no storage) are shown but never count as "fastest peer".
const isLowerBound = system => system.endsWith("-inproc")
const SCENARIO_ORDER = { s1: 1, s2: 2, s3: 3 }

function usage(msg) {
  if (msg) console.error(`compare.mjs: ${msg}`)
  console.error("usage: node bench/compare.mjs [--json] [--n 1000,10000] FILE.jsonl [FILE.jsonl ...]")
  process.exit(2)
}

// ---- arguments ----
let asJson = false
let onlyN = null
const files = []
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]
  if (a === "--json") asJson = true
  else if (a === "--n") {
    const v = argv[++i]
    if (!v || !/^\d+(,\d+)*$/.test(v)) usage("--n needs a comma-separated list of integers")
    onlyN = new Set(v.split(",").map(Number))
  } else if (a === "-h" || a === "--help") usage()
  else if (a.startsWith("--")) usage(`unknown option ${a}`)
  else files.push(a)
}
if (!files.length) usage("no input files")

// ---- read rows ----
const rows = []
const unparseable = [] // e.g. a last line cut short when a benchmark was killed mid-write
const warnings = []
let otherBackend = 0
for (const file of files) {
  let text
  try { text = fs.readFileSync(file, "utf8") } catch (e) { usage(`cannot read ${file}: ${e.message}`) }
  text.split("\n").forEach((line, idx) => {
    if (!line.trim()) return
    let r
    try { r = JSON.parse(line) } catch { unparseable.push({ file, line: idx + 1, text: line.slice(0, 120) }); return }
    if (!r || typeof r !== "object" || Array.isArray(r)) { unparseable.push({ file, line: idx + 1, text: line.slice(0, 120) }); return }
    const system = String(r.system ?? "unknown")
    // The peers run one server on one store, so the comparison is with Outpost's SQLite hub
    // (the default). Rows of the sync bench's other backends (`--backends postgres`) and of
    // several hub nodes are left out here, counted in a warning; the bench's own median table
    // shows them beside SQLite.
    if (system === OUTPOST && ((r.backend ?? "sqlite") !== "sqlite" || (r.nodes ?? 1) !== 1)) { otherBackend++; return }
    rows.push({ ...r, system: SYSTEM_ALIASES[system] ?? system, layout: String(r.layout ?? "?"), scenario: String(r.scenario ?? "?"), n: Number(r.n), _file: file })
  })
  if (rows.some(r => r._file === file && r.fake)) warnings.push(`${file} contains rows marked "fake": true (hand-written test data, not measurements)`)
}
if (otherBackend) warnings.push(`${otherBackend} Outpost rows on another hub backend than SQLite, or on several hub nodes, left out (see the bench's own table)`)
const selected = onlyN ? rows.filter(r => onlyN.has(r.n)) : rows

// ---- statistics ----
const num = x => typeof x === "number" && Number.isFinite(x)
function median(values) {
  const v = values.filter(num).sort((a, b) => a - b)
  if (!v.length) return null
  const m = Math.floor(v.length / 2)
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2
}

const groupKey = r => JSON.stringify([r.system, r.layout, r.scenario, r.n])
const groups = new Map()
for (const r of selected) {
  const k = groupKey(r)
  if (!groups.has(k)) groups.set(k, [])
  groups.get(k).push(r)
}
function stats(all) {
  const ok = all.filter(r => r.error == null)
  const s = ok.map(r => r.sync_s).filter(num)
  return {
    runs_ok: ok.length,
    runs_total: all.length,
    sync_s: median(s),
    sync_s_min: s.length ? Math.min(...s) : null,
    sync_s_max: s.length ? Math.max(...s) : null,
    bytes_up: median(ok.map(r => r.bytes_up)),
    bytes_down: median(ok.map(r => r.bytes_down)),
    client_maxrss_kb: median(ok.map(r => r.client_maxrss_kb)),
    server_maxrss_kb: median(ok.map(r => r.server_maxrss_kb)),
    change_bytes: median(ok.map(r => r.change_bytes)),
    // per run (up+down)/change_bytes, then the median: how many wire bytes per byte of changes
    wire_per_change_byte: median(ok.map(r =>
      num(r.bytes_up) && num(r.bytes_down) && num(r.change_bytes) && r.change_bytes > 0
        ? (r.bytes_up + r.bytes_down) / r.change_bytes : null)),
  }
}

// Columns = (system, layout) pairs; peers first (alphabetically), Outpost last.
const colMap = new Map()
for (const r of selected) colMap.set(JSON.stringify([r.system, r.layout]), { system: r.system, layout: r.layout })
const columns = [...colMap.values()].sort((a, b) =>
  (a.system === OUTPOST) - (b.system === OUTPOST) || a.system.localeCompare(b.system) || a.layout.localeCompare(b.layout))
const layoutsPerSystem = {}
for (const c of columns) layoutsPerSystem[c.system] = (layoutsPerSystem[c.system] ?? 0) + 1
for (const c of columns) {
  // Short header label; add the layout only where a system appears with several layouts.
  c.label = layoutsPerSystem[c.system] > 1 ? `${c.system}/${c.layout}` : c.system
  c.is_outpost = c.system === OUTPOST
  c.lower_bound = isLowerBound(c.system)
}
const peerCols = columns.filter(c => !c.is_outpost)
const outpostCols = columns.filter(c => c.is_outpost)

// Table rows = (scenario, n), ordered by n then s1, s2, s3, others.
const rowKeys = [...new Map(selected.map(r => [JSON.stringify([r.scenario, r.n]), { scenario: r.scenario, n: r.n }])).values()]
  .sort((a, b) => a.n - b.n || (SCENARIO_ORDER[a.scenario] ?? 99) - (SCENARIO_ORDER[b.scenario] ?? 99) || a.scenario.localeCompare(b.scenario))

const table = rowKeys.map(({ scenario, n }) => {
  const systems = {}
  for (const c of columns) {
    const g = groups.get(JSON.stringify([c.system, c.layout, scenario, n]))
    systems[c.label] = g ? stats(g) : null
  }
  // fastest peer = smallest median sync seconds among the real sync stacks that have one
  let fastest = null
  for (const c of peerCols) {
    const s = systems[c.label]
    if (c.lower_bound || !s || s.sync_s == null) continue
    if (!fastest || s.sync_s < fastest.sync_s) fastest = { label: c.label, sync_s: s.sync_s }
  }
  const speedup = {}
  const s2Amplification = {}
  for (const c of outpostCols) {
    const o = systems[c.label]
    speedup[c.label] = fastest && o && o.sync_s > 0 ? fastest.sync_s / o.sync_s : null
    if (scenario === "s2") s2Amplification[c.label] = o ? o.wire_per_change_byte : null
  }
  return { scenario, n, systems, fastest_peer: fastest, fastest_peer_over_outpost: speedup, ...(scenario === "s2" ? { s2_outpost_wire_per_change_byte: s2Amplification } : {}) }
})

const failed = selected.filter(r => r.error != null).map(r => ({
  system: r.system, layout: r.layout, scenario: r.scenario, n: r.n, rep: r.rep ?? null,
  error: String(r.error).split("\n")[0].slice(0, 200), file: r._file,
}))
if (!outpostCols.length) warnings.push("no Outpost rows (system \"outpost\"): the ratio columns are empty")
if (!peerCols.length) warnings.push("no peer rows: the ratio columns are empty")
if (onlyN && !selected.length) warnings.push(`no rows with n in {${[...onlyN].join(", ")}}`)

// ---- output ----
if (asJson) {
  console.log(JSON.stringify({
    inputs: files, n_filter: onlyN ? [...onlyN] : null,
    columns: columns.map(({ label, system, layout, is_outpost, lower_bound }) => ({ label, system, layout, is_outpost, lower_bound })),
    rows: table, failed, unparseable, warnings,
  }, null, 2))
  process.exit(0)
}

const fmtS = s => s == null ? "–" : s < 1 ? s.toFixed(3) : s < 10 ? s.toFixed(2) : s.toFixed(1)
const fmtB = b => b == null ? "–" : b >= 1e6 ? (b / 1e6).toFixed(2) + " MB" : (b / 1e3).toFixed(1) + " kB"
const fmtRss = kb => kb == null ? "–" : Math.round(kb / 1024) + " MB"
const fmtX = x => x == null ? "–" : (x < 10 ? x.toFixed(2) : x.toFixed(1)) + "×"
function secondsCell(s) {
  if (!s) return "–"
  if (!s.runs_ok) return `FAILED (0/${s.runs_total})`
  return fmtS(s.sync_s) + (s.runs_ok < s.runs_total ? ` (${s.runs_ok}/${s.runs_total} ok)` : "")
}

const out = []
out.push("## Outpost vs peers: medians over successful runs")
out.push("")
out.push("Per system: `s` = timed sync seconds, `up`/`down` = bytes laptop→server / server→laptop, " +
  "`cRSS`/`sRSS` = peak RSS of the client / server process. " +
  "`fastest peer / outpost` = fastest peer's seconds ÷ Outpost's (>1: Outpost is faster). " +
  "`S2 wire/change` = Outpost's (up+down) ÷ size of the Automerge changes (S2 rows only).")
out.push("")
out.push("Systems: " + columns.map(c => `${c.label} = ${c.system} (${c.layout})${c.lower_bound ? ", in-process lower bound, not counted as fastest peer" : ""}`).join("; ") + ".")
out.push("")
const head = ["scen", "N"]
const align = ["---", "---:"]
for (const c of columns) for (const m of ["s", "up", "down", "cRSS", "sRSS"]) { head.push(`${c.label} ${m}`); align.push("---:") }
head.push("fastest peer"); align.push("---")
for (const c of outpostCols) { head.push(outpostCols.length > 1 ? `fastest peer / ${c.label}` : "fastest peer / outpost"); align.push("---:") }
for (const c of outpostCols) { head.push(outpostCols.length > 1 ? `S2 wire/change ${c.label}` : "S2 wire/change"); align.push("---:") }
out.push(`| ${head.join(" | ")} |`)
out.push(`|${align.join("|")}|`)
for (const row of table) {
  const cells = [row.scenario.toUpperCase(), String(row.n)]
  for (const c of columns) {
    const s = row.systems[c.label]
    const ok = s && s.runs_ok
    cells.push(secondsCell(s), ok ? fmtB(s.bytes_up) : "–", ok ? fmtB(s.bytes_down) : "–",
      ok ? fmtRss(s.client_maxrss_kb) : "–", ok ? fmtRss(s.server_maxrss_kb) : "–")
  }
  cells.push(row.fastest_peer ? row.fastest_peer.label : "–")
  for (const c of outpostCols) cells.push(fmtX(row.fastest_peer_over_outpost[c.label]))
  for (const c of outpostCols) cells.push(row.scenario === "s2" ? fmtX(row.s2_outpost_wire_per_change_byte[c.label]) : "")
  out.push(`| ${cells.join(" | ")} |`)
}
if (!table.length) out.push("(no rows)")
out.push("")
out.push(`### Failed runs (${failed.length})`)
out.push("")
if (!failed.length) out.push("none")
for (const f of failed) out.push(`- ${f.system} ${f.layout} ${f.scenario.toUpperCase()} N=${f.n} rep ${f.rep ?? "?"}: ${f.error}`)
if (unparseable.length) {
  out.push("")
  out.push(`### Unparseable lines (${unparseable.length})`)
  out.push("")
  for (const u of unparseable) out.push(`- ${u.file}:${u.line}: \`${u.text.replace(/`/g, "'")}\``)
}
if (warnings.length) {
  out.push("")
  for (const w of warnings) out.push(`**Warning:** ${w}`)
}
console.log(out.join("\n"))
