import { quantile, type KindResult, type PhaseResult } from '@spillway/overload-bench/open-loop'
import { TEMPLATES, type RequestClass } from './scenario.js'

export type { KindResult, PhaseResult }

/** One second of the server's own state, as `/spillway/state` reported it (protected run only). */
export interface ServerSample {
  /** Seconds since the start of the run. */
  second: number
  level: number | null
  featuresOff: string[]
  pressure: number | null
  limit: number | null
  databaseWaiting: number
}

/** The closed-loop retry storm after the scripted phases (see `STORM_MIX`). */
export interface StormResult {
  clients: number
  /** 2xx within the timeout per second. */
  goodputPerSecond: number
  refusedPerSecond: number
  timedOutPerSecond: number
}

export interface TargetRun {
  target: 'unprotected' | 'protected'
  phases: PhaseResult[]
  health: PhaseResult
  server: ServerSample[]
  storm?: StormResult
}

/** The table's figures for one target, all computed from the run's outcomes. */
export interface TargetFigures {
  /** Successful answers (2xx within the client timeout) per second, shoppers' traffic only (no bot, no health). */
  goodputPerSecond: number
  goodputFlashCrowdPerSecond: number
  goodputSlowDatabasePerSecond: number
  /** Share of checkouts (high priority) answered 2xx in time, whole run and per episode. */
  checkoutSuccess: number
  checkoutSuccessFlashCrowd: number
  checkoutSuccessSlowDatabase: number
  checkoutP99Ms: number | null
  /** Share of shoppers' requests the client gave up on (no answer within the timeout). */
  timedOut: number
  /** Share of health checks answered 2xx in time. */
  healthAnswered: number
  /** Share of the abusive client's checkouts refused (429 or 503). */
  botRefused: number
  peakLevel: number | null
  /** Goodput during the retry storm, when the run had one. */
  stormGoodputPerSecond: number | null
  stormClients: number | null
}

function combine(results: KindResult[]): KindResult {
  const out: KindResult = { offered: 0, ok: 0, shed: 0, timedOut: 0, errors: 0, latenciesMs: [] }
  for (const r of results) {
    out.offered += r.offered
    out.ok += r.ok
    out.shed += r.shed
    out.timedOut += r.timedOut
    out.errors += r.errors
    for (const latency of r.latenciesMs) out.latenciesMs.push(latency)
  }
  return out
}

/** Every kind of the given classes, in the given phases. */
function select(phases: readonly PhaseResult[], classes: readonly RequestClass[]): KindResult {
  const picked: KindResult[] = []
  for (const phase of phases) {
    for (const [kind, result] of Object.entries(phase.byKind)) {
      const template = TEMPLATES[kind]
      if (template !== undefined && classes.includes(template.class)) picked.push(result)
    }
  }
  return combine(picked)
}

const ratio = (part: number, whole: number): number => (whole === 0 ? 0 : part / whole)
const seconds = (phases: readonly PhaseResult[]): number => phases.reduce((sum, p) => sum + p.durationMs, 0) / 1000
const perSecondOf = (count: number, phases: readonly PhaseResult[]): number => (phases.length === 0 ? 0 : count / seconds(phases))

export function figuresOf(run: TargetRun): TargetFigures {
  const shoppers: RequestClass[] = ['high', 'normal', 'low']
  const flash = run.phases.filter((p) => p.name === 'flash-crowd')
  const slow = run.phases.filter((p) => p.name === 'slow-db')
  const all = select(run.phases, shoppers)
  const checkout = select(run.phases, ['high'])
  const bot = select(run.phases, ['bot'])
  const health = combine(Object.values(run.health.byKind))
  const levels = run.server.map((s) => s.level).filter((l): l is number => l !== null)
  return {
    goodputPerSecond: perSecondOf(all.ok, run.phases),
    goodputFlashCrowdPerSecond: perSecondOf(select(flash, shoppers).ok, flash),
    goodputSlowDatabasePerSecond: perSecondOf(select(slow, shoppers).ok, slow),
    checkoutSuccess: ratio(checkout.ok, checkout.offered),
    checkoutSuccessFlashCrowd: ratio(select(flash, ['high']).ok, select(flash, ['high']).offered),
    checkoutSuccessSlowDatabase: ratio(select(slow, ['high']).ok, select(slow, ['high']).offered),
    checkoutP99Ms: checkout.latenciesMs.length === 0 ? null : quantile(checkout.latenciesMs, 0.99),
    timedOut: ratio(all.timedOut, all.offered),
    healthAnswered: ratio(health.ok, health.offered),
    botRefused: ratio(bot.shed, bot.offered),
    peakLevel: levels.length === 0 ? null : Math.max(...levels),
    stormGoodputPerSecond: run.storm?.goodputPerSecond ?? null,
    stormClients: run.storm?.clients ?? null
  }
}

const pct = (x: number): string => `${(x * 100).toFixed(1)}%`
const perSecond = (x: number): string => `${x.toFixed(0)}/s`
const ms = (x: number | null): string => (x === null ? '–' : `${x.toFixed(0)} ms`)

/** The rows of the side-by-side table: label, unprotected, protected. */
export function summaryRows(unprotected: TargetFigures, protectedRun: TargetFigures): Array<[string, string, string]> {
  const row = (label: string, format: (f: TargetFigures) => string): [string, string, string] => [label, format(unprotected), format(protectedRun)]
  return [
    row('goodput, whole run (2xx in time)', (f) => perSecond(f.goodputPerSecond)),
    row('goodput during the flash crowd', (f) => perSecond(f.goodputFlashCrowdPerSecond)),
    row('goodput during the slow database', (f) => perSecond(f.goodputSlowDatabasePerSecond)),
    row('checkouts (high) succeeded', (f) => pct(f.checkoutSuccess)),
    row('… during the flash crowd', (f) => pct(f.checkoutSuccessFlashCrowd)),
    row('… during the slow database', (f) => pct(f.checkoutSuccessSlowDatabase)),
    row('checkout p99 latency', (f) => ms(f.checkoutP99Ms)),
    row('requests timed out (client gave up)', (f) => pct(f.timedOut)),
    row('health checks answered', (f) => pct(f.healthAnswered)),
    row('abusive client refused (429)', (f) => pct(f.botRefused)),
    row('peak degradation level', (f) => (f.peakLevel === null ? '–' : String(f.peakLevel))),
    ...(unprotected.stormGoodputPerSecond === null && protectedRun.stormGoodputPerSecond === null
      ? []
      : [row(`goodput in the retry storm (${unprotected.stormClients ?? protectedRun.stormClients} clients retrying at once)`,
          (f) => (f.stormGoodputPerSecond === null ? '–' : perSecond(f.stormGoodputPerSecond)))])
  ]
}

/** A Markdown table (readable as is in a terminal, a CI log and a README). */
export function markdownTable(rows: ReadonlyArray<readonly [string, string, string]>): string {
  const header: readonly [string, string, string] = ['', 'unprotected', 'protected (Spillway)']
  const widths = [0, 1, 2].map((i) => Math.max(...[header, ...rows].map((r) => r[i]!.length)))
  const line = (r: readonly string[]): string => `| ${r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join(' | ')} |`
  return [line(header), `| ${widths.map((w, i) => (i === 0 ? '-'.repeat(w) : `${'-'.repeat(w - 1)}:`)).join(' | ')} |`, ...rows.map(line)].join('\n')
}

/** Whether protection won on what the demo claims; each failed claim is named. */
export function verdict(unprotected: TargetFigures, protectedRun: TargetFigures): { won: boolean, failed: string[] } {
  const failed: string[] = []
  if (!(protectedRun.goodputPerSecond > unprotected.goodputPerSecond)) failed.push('goodput')
  if (!(protectedRun.checkoutSuccess > unprotected.checkoutSuccess)) failed.push('checkout success')
  if (!(protectedRun.healthAnswered >= unprotected.healthAnswered)) failed.push('health checks')
  if (unprotected.stormGoodputPerSecond !== null && protectedRun.stormGoodputPerSecond !== null &&
    !(protectedRun.stormGoodputPerSecond > unprotected.stormGoodputPerSecond)) failed.push('goodput in the retry storm')
  return { won: failed.length === 0, failed }
}
