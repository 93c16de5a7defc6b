import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import type { ScriptedPhase } from './scenario.js'
import type { TargetRun } from './summary.js'
import { answered, p99Ms, type Timeline } from './timeline.js'

const require = createRequire(import.meta.url)
// uPlot (a small charting library, ~50 kB) is inlined, so that the report opens offline.
const UPLOT_JS = readFileSync(require.resolve('uplot/dist/uPlot.iife.min.js'), 'utf8')
const UPLOT_CSS = readFileSync(require.resolve('uplot/dist/uPlot.min.css'), 'utf8')

/** Per-second series of one run, as the report plots them (null: nothing to plot that second). */
export interface SeriesOfRun {
  target: string
  seconds: number[]
  offered: number[]
  okHigh: number[]
  okNormal: number[]
  okLow: number[]
  p99High: Array<number | null>
  p99Normal: Array<number | null>
  p99Low: Array<number | null>
  shed: number[]
  timedOut: number[]
  errors: number[]
  shedPercent: number[]
  level: Array<number | null>
  botLimited: number[]
  botOk: number[]
}

export function seriesOf(run: TargetRun & { timeline: Timeline }, totalSeconds: number): SeriesOfRun {
  const s: SeriesOfRun = {
    target: run.target, seconds: [], offered: [], okHigh: [], okNormal: [], okLow: [], p99High: [], p99Normal: [], p99Low: [],
    shed: [], timedOut: [], errors: [], shedPercent: [], level: [], botLimited: [], botOk: []
  }
  const perSecond = 1000 / run.timeline.bucketMs
  for (let i = 0; i < Math.ceil(totalSeconds * perSecond); i++) {
    const b = run.timeline.bucket(i)
    const shoppers = [b.high, b.normal, b.low]
    const total = shoppers.reduce((sum, slot) => sum + answered(slot), 0)
    const shed = shoppers.reduce((sum, slot) => sum + slot.shed, 0)
    s.seconds.push(i / perSecond)
    s.offered.push(total * perSecond)
    s.okHigh.push(b.high.ok * perSecond)
    s.okNormal.push(b.normal.ok * perSecond)
    s.okLow.push(b.low.ok * perSecond)
    s.p99High.push(p99Ms(b.high))
    s.p99Normal.push(p99Ms(b.normal))
    s.p99Low.push(p99Ms(b.low))
    s.shed.push(shed * perSecond)
    s.timedOut.push(shoppers.reduce((sum, slot) => sum + slot.timedOut, 0) * perSecond)
    s.errors.push(shoppers.reduce((sum, slot) => sum + slot.errors + slot.limited, 0) * perSecond)
    s.shedPercent.push(total === 0 ? 0 : (shed / total) * 100)
    // The server sample taken at the end of second i+1 describes second i.
    s.level.push(run.server.find((sample) => sample.second === i + 1)?.level ?? null)
    s.botLimited.push((b.bot.limited + b.bot.shed) * perSecond)
    s.botOk.push(b.bot.ok * perSecond)
  }
  return s
}

const escapeHtml = (text: string): string => text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!)

export interface ReportInput {
  startedAt: Date
  capacityPerSecond: number
  timeoutMs: number
  phases: readonly ScriptedPhase[]
  rows: ReadonlyArray<readonly [string, string, string]>
  runs: ReadonlyArray<TargetRun & { timeline: Timeline }>
}

/** A self-contained HTML page: the table, then each plot for both runs side by side on the same scales. */
export function renderReport(input: ReportInput): string {
  const totalSeconds = input.phases.reduce((sum, p) => sum + p.durationMs, 0) / 1000
  let at = 0
  const phases = input.phases.map((p) => {
    const start = at
    at += p.durationMs / 1000
    return { label: p.label, start, end: at }
  })
  const data = { phases, runs: input.runs.map((run) => seriesOf(run, totalSeconds)) }
  const table = input.rows.map(([label, a, b]) => `<tr><td>${escapeHtml(label)}</td><td>${escapeHtml(a)}</td><td>${escapeHtml(b)}</td></tr>`).join('\n')
  // `<\/` keeps a "</script>" inside the JSON from closing the script element.
  const json = JSON.stringify(data).replace(/<\//g, '<\\/')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Spillway demo — ${escapeHtml(input.startedAt.toISOString())}</title>
<style>${UPLOT_CSS}</style>
<style>
  body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5rem auto; max-width: 1280px; color: #1d2330; padding: 0 1rem; }
  h1 { font-size: 1.4rem; } h2 { font-size: 1.05rem; margin: 1.6rem 0 .4rem; }
  table.summary { border-collapse: collapse; } table.summary td, table.summary th { border-bottom: 1px solid #dde; padding: .25rem .8rem; }
  table.summary td + td, table.summary th + th { text-align: right; font-variant-numeric: tabular-nums; }
  .pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
  .pair > div > h3 { font-size: .85rem; margin: 0; color: #556; text-transform: uppercase; letter-spacing: .05em; }
  .note { color: #556; }
  section { background: #fff; padding: .2rem .4rem .4rem; }
</style>
</head>
<body>
<h1>Spillway demo: a shop API in a flash crowd and a slow-database episode</h1>
<p class="note">Run of ${escapeHtml(input.startedAt.toISOString())}. Capacity measured on the unprotected server:
${input.capacityPerSecond.toFixed(0)} req/s (closed loop, GET /products/:id). Open-loop load (fixed arrival rate whatever the
server does), client timeout ${input.timeoutMs} ms; a success is a 2xx within it. Phases:
${escapeHtml(phases.map((p) => `${p.label} ${p.start}–${p.end} s`).join(' · '))}.</p>
<table class="summary"><tr><th></th><th>unprotected</th><th>protected (Spillway)</th></tr>
${table}
</table>
<div id="charts"></div>
<script>${UPLOT_JS}</script>
<script>
const DATA = ${json}
const COLORS = { high: '#cf222e', normal: '#0969da', low: '#8250df', offered: '#8c959f', shed: '#d1570a', timedOut: '#24292f', errors: '#bf8700', level: '#1a7f37', ok: '#1a7f37' }
const CHARTS = [
  { title: 'Goodput per priority (2xx in time, req/s)', series: [['offered', 'offered (all)', 'offered', true], ['okHigh', 'high: checkout', 'high'], ['okNormal', 'normal: products, search', 'normal'], ['okLow', 'low: analytics', 'low']] },
  { title: 'p99 latency of successes per priority (ms)', series: [['p99High', 'high', 'high'], ['p99Normal', 'normal', 'normal'], ['p99Low', 'low', 'low']] },
  { title: 'Refused and failed shoppers\\' requests (req/s)', series: [['shed', 'shed (503)', 'shed'], ['timedOut', 'timed out (client gave up)', 'timedOut'], ['errors', 'other errors', 'errors']] },
  { title: 'Shed rate (%) and degradation level', series: [['shedPercent', 'shed %', 'shed'], ['level', 'degradation level (right axis)', 'level', false, 'level']] },
  { title: 'Abusive client on POST /checkout (req/s)', series: [['botLimited', 'refused (429)', 'shed'], ['botOk', 'served', 'ok']] }
]
function phaseLines(u) {
  const ctx = u.ctx
  ctx.save()
  ctx.strokeStyle = '#0003'; ctx.fillStyle = '#556'; ctx.font = (11 * devicePixelRatio) + 'px system-ui'
  ctx.textAlign = 'left'; ctx.textBaseline = 'top'
  DATA.phases.forEach((p, i) => {
    const x = Math.round(u.valToPos(p.start, 'x', true))
    ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke()
    // Short label (up to the parenthesis), on two alternating rows so that neighbours do not overlap.
    ctx.fillText(p.label.split(' (')[0], x + 3 * devicePixelRatio, u.bbox.top + (2 + (i % 2) * 13) * devicePixelRatio)
  })
  ctx.restore()
}
const root = document.getElementById('charts')
CHARTS.forEach((chart, index) => {
  const section = document.createElement('section'); section.id = 'chart-' + index; root.appendChild(section)
  const h = document.createElement('h2'); h.textContent = chart.title; section.appendChild(h)
  const pair = document.createElement('div'); pair.className = 'pair'; section.appendChild(pair)
  let max = 0
  for (const run of DATA.runs) for (const [key, , , , axis] of chart.series) if (axis === undefined) for (const v of run[key]) if (v !== null && v > max) max = v
  for (const run of DATA.runs) {
    const cell = document.createElement('div'); pair.appendChild(cell)
    const t = document.createElement('h3'); t.textContent = run.target; cell.appendChild(t)
    const hasLevel = chart.series.some((s) => s[4] === 'level')
    const width = Math.max(320, Math.floor((Math.min(window.innerWidth, 1280) - 80) / 2))
    new uPlot({
      width, height: 240, legend: { live: false },
      scales: { x: { time: false }, y: { range: [0, Math.max(max * 1.05, 1)] }, level: { range: [0, 3.2] } },
      axes: [{ label: 'seconds' }, { size: 55 }].concat(hasLevel ? [{ scale: 'level', side: 1, grid: { show: false }, incrs: [1] }] : []),
      series: [{ label: 's' }].concat(chart.series.map(([key, label, color, dash, scale]) => ({
        label, stroke: COLORS[color], width: 2, dash: dash ? [6, 4] : undefined, scale: scale ?? 'y', spanGaps: false,
        paths: scale === 'level' ? uPlot.paths.stepped({ align: 1 }) : undefined
      }))),
      hooks: { draw: [phaseLines] }
    }, [run.seconds].concat(chart.series.map(([key]) => run[key])), cell)
  }
})
</script>
</body>
</html>
`
}
