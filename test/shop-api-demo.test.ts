/**
 * The demo's figures and report (examples/shop-api/src/demo): the table is computed from the
 * generator's outcomes, the verdict names what protection failed to win, and the report is one
 * offline HTML file with the charting library inlined.
 */
import t from 'tap'
import { renderReport, seriesOf } from '../examples/shop-api/src/demo/report.js'
import { scriptedPhases } from '../examples/shop-api/src/demo/scenario.js'
import { figuresOf, markdownTable, summaryRows, verdict, type KindResult, type PhaseResult, type TargetRun } from '../examples/shop-api/src/demo/summary.js'
import { Timeline, p99Ms } from '../examples/shop-api/src/demo/timeline.js'

function kind(offered: number, ok: number, shed: number, timedOut: number, latencyMs = 10): KindResult {
  return { offered, ok, shed, timedOut, errors: offered - ok - shed - timedOut, latenciesMs: Array.from({ length: ok }, (_, i) => latencyMs + i) }
}

function phase(name: string, durationMs: number, byKind: Record<string, KindResult>): PhaseResult {
  return { name, ratePerSecond: 0, sentPerSecond: 0, durationMs, byKind, timeline: [], bucketMs: 100 }
}

function run(target: TargetRun['target'], checkoutOk: number, productOk: number, healthOk: number, level: number | null): TargetRun {
  return {
    target,
    phases: [
      phase('steady', 2000, { checkout: kind(10, 10, 0, 0), product: kind(100, 100, 0, 0), 'checkout-bot': kind(4, 4, 0, 0) }),
      phase('flash-crowd', 2000, { checkout: kind(40, checkoutOk, 40 - checkoutOk, 0, 50), product: kind(400, productOk, 0, 400 - productOk), 'checkout-bot': kind(20, 2, 18, 0) })
    ],
    health: phase('health', 4000, { health: kind(40, healthOk, 0, 40 - healthOk) }),
    server: level === null ? [] : [{ second: 1, level: 0, featuresOff: [], pressure: 0, limit: 20, databaseWaiting: 0 }, { second: 3, level, featuresOff: [], pressure: 0.5, limit: 20, databaseWaiting: 0 }]
  }
}

t.test('figures come from the outcomes', async (t) => {
  const f = figuresOf(run('protected', 36, 200, 40, 2))
  t.equal(f.goodputPerSecond, (10 + 100 + 36 + 200) / 4, 'shoppers\' 2xx per second over the whole run (no bot, no health)')
  t.equal(f.goodputFlashCrowdPerSecond, (36 + 200) / 2)
  t.equal(f.checkoutSuccess, 46 / 50)
  t.equal(f.checkoutSuccessFlashCrowd, 36 / 40)
  t.equal(f.timedOut, 200 / 550)
  t.equal(f.healthAnswered, 1)
  t.equal(f.botRefused, 18 / 24)
  t.equal(f.peakLevel, 2)
  t.equal(figuresOf(run('unprotected', 1, 1, 1, null)).peakLevel, null)
})

t.test('the verdict names each claim protection did not win', async (t) => {
  const weak = figuresOf(run('unprotected', 5, 50, 20, null))
  const strong = figuresOf(run('protected', 40, 300, 40, 1))
  t.same(verdict(weak, strong), { won: true, failed: [] })
  t.same(verdict(strong, weak).failed, ['goodput', 'checkout success', 'health checks'])
})

t.test('the table is Markdown with both columns', async (t) => {
  const table = markdownTable(summaryRows(figuresOf(run('unprotected', 5, 50, 20, null)), figuresOf(run('protected', 40, 300, 40, 1))))
  const lines = table.split('\n')
  t.match(lines[0], /\| +\| unprotected \| protected \(Spillway\) \|/)
  t.match(lines[1], /^\| -+ \| -+: \| -+: \|$/)
  t.match(table, /checkouts \(high\) succeeded +\| +30\.0% \| +100\.0% \|/)
  t.match(table, /health checks answered +\| +50\.0% \| +100\.0% \|/)
  t.ok(lines.every((line) => line.length === lines[0]!.length), 'columns aligned')
})

t.test('the retry storm: a row of its goodput, and a claim protection must win when both runs had one', async (t) => {
  const storm = (goodputPerSecond: number) => ({ clients: 400, goodputPerSecond, refusedPerSecond: 100, timedOutPerSecond: 0 })
  const weak = figuresOf({ ...run('unprotected', 5, 50, 20, null), storm: storm(120) })
  const strong = figuresOf({ ...run('protected', 40, 300, 40, 1), storm: storm(410) })
  t.equal(strong.stormGoodputPerSecond, 410)
  t.same(verdict(weak, strong), { won: true, failed: [] })
  t.same(verdict(strong, weak).failed, ['goodput', 'checkout success', 'health checks', 'goodput in the retry storm'])
  t.match(markdownTable(summaryRows(weak, strong)), /goodput in the retry storm \(400 clients retrying at once\) +\| +120\/s \| +410\/s \|/)
  t.notMatch(markdownTable(summaryRows(figuresOf(run('unprotected', 5, 50, 20, null)), figuresOf(run('protected', 40, 300, 40, 1)))), /retry storm/,
    'no row for runs without a storm')
})

t.test('timeline buckets outcomes by class and second', async (t) => {
  const timeline = new Timeline(1000)
  timeline.record('high', 201, 1100, 12)
  timeline.record('high', 503, 1200, 1)
  timeline.record('bot', 429, 2500, 1)
  timeline.record('normal', -1, 2600, 1000)
  timeline.record('low', 500, 2700, 3)
  t.same([timeline.bucket(0).high.ok, timeline.bucket(0).high.shed], [1, 1])
  t.equal(p99Ms(timeline.bucket(0).high), 12)
  t.equal(timeline.bucket(1).bot.limited, 1)
  t.equal(timeline.bucket(1).normal.timedOut, 1)
  t.equal(timeline.bucket(1).low.errors, 1)
  t.equal(p99Ms(timeline.bucket(7).high), null, 'a bucket never written reads empty')
})

t.test('the report is self-contained HTML with uPlot inlined and the run\'s series', async (t) => {
  const phases = scriptedPhases(400, 0.1)
  t.same(phases.map((p) => p.name), ['steady', 'flash-crowd', 'slow-db', 'recovery'])
  t.equal(phases[1]!.ratePerSecond, 1400, 'the flash crowd is 3.5× the capacity')
  const timeline = new Timeline(0)
  timeline.record('high', 200, 500, 20)
  timeline.record('normal', 503, 1500, 1)
  const base = run('protected', 36, 200, 40, 2)
  const series = seriesOf({ ...base, timeline }, 3)
  t.same(series.okHigh, [1, 0, 0])
  t.same(series.shedPercent, [0, 100, 0])
  t.same(series.level, [0, null, 2], 'server samples aligned to the second they describe')
  const html = renderReport({ startedAt: new Date(0), capacityPerSecond: 400, timeoutMs: 1000, phases, rows: [['goodput', '1/s', '2/s']], runs: [{ ...base, timeline }, { ...run('unprotected', 1, 1, 1, null), timeline }] })
  t.match(html, /^<!doctype html>/)
  t.match(html, /uPlot/, 'the charting library is inlined')
  t.notMatch(html, /<script[^>]+src=|<link[^>]+href=/, 'nothing is loaded from elsewhere')
  t.match(html, /<td>goodput<\/td><td>1\/s<\/td><td>2\/s<\/td>/)
  t.match(html, /"okHigh":\[1,0,0,0\]/, "the series of a 3.8 s scenario: 4 seconds")
})
