/**
 * Overload benchmark: for each scenario (CPU-bound, IO-bound), measure the unprotected server's
 * capacity, then offer 1×, 2×, 3× and 5× of it open-loop to three servers — unprotected,
 * @fastify/under-pressure, @spillway/load-shedding — each in its own child process, and report per
 * priority what got through in time. Then 0.5× for a while, to time how long shedding lasts after
 * the overload stops.
 *
 *   pnpm bench:overload            full run (~4 min)
 *   pnpm bench:overload --quick    short steps (~2 min)
 *   … --scenario cpu,io,pg  --target spillway,unprotected
 *   … --log   the target servers with Fastify's request logging on (into a temporary file)
 *   … --framework express   the same scenarios as Express apps: unprotected, express-rate-limit, spillway
 *                           (@spillway/express's loadShedding mounted first), spillway-front (the same
 *                           shedder in front of Express), capacity measured on unprotected Express
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { EXPRESS_TARGETS, parseFramework, scenariosFor } from './frameworks.js'
import { createClient, measureCapacity, quantile, runOpenLoop, type PhaseResult } from './open-loop.js'
import { withPostgresFallback } from './postgres-fallback.js'
import { DATABASE_URL } from './postgres-pool.js'
import { LOGGING_NOTE, RequestLogs } from './request-log.js'
import { calibrateCpuWork, SCENARIOS, TARGETS, WORK_MIX, type Scenario, type Target } from './scenario-app.js'
import { forkServer, killServers, type ServerChild } from './server-child.js'
import { flag, hasFlag } from './command-line.js'

const here = dirname(fileURLToPath(import.meta.url))
if (hasFlag('--help')) {
  console.log('usage: bench [--quick] [--framework fastify|express] [--scenario cpu,io,pg] [--target unprotected,under-pressure,spillway,spillway-front] [--step-ms 5000] [--log]')
  console.log('       Express targets: unprotected, express-rate-limit, spillway, spillway-front')
  process.exit(0)
}
const quick = hasFlag('--quick')
const framework = parseFramework(flag('--framework'))
const scenarios = await withPostgresFallback(scenariosFor(framework, (flag('--scenario')?.split(',') ?? SCENARIOS) as Scenario[]), DATABASE_URL)
const logging = hasFlag('--log')
if (logging && framework === 'express') throw new Error('--log turns on Fastify\'s request logging; the Express targets have none')
const logs = logging ? new RequestLogs() : undefined
const targets = (flag('--target')?.split(',') ?? (framework === 'express' ? EXPRESS_TARGETS : TARGETS)) as Target[]
const stepMs = Number(flag('--step-ms') ?? (quick ? 2500 : 5000))
const capacityFlag = flag('--capacity') === undefined ? undefined : Number(flag('--capacity'))
if (capacityFlag !== undefined && !(capacityFlag > 0)) throw new Error(`--capacity must be requests per second > 0, got ${flag('--capacity')}`)
const recoveryMs = quick ? 3000 : 4000
const MULTIPLIERS = [1, 2, 3, 5]
const TIMEOUT_MS = 1000

const HEALTH_PER_SECOND = 20

async function startServer(
  scenario: Scenario, target: Target, cpuIterations: number, capacityPerSecond = 0
): Promise<ServerChild> {
  const logFile = logs?.fileFor(`${scenario}-${target}`) ?? ''
  return forkServer(join(here, 'server-process.ts'), [scenario, target, String(cpuIterations), framework, String(capacityPerSecond), logFile],
    { name: `server ${scenario}/${target}` })
}

/** Health checks ride along as a separate open loop so their rate does not scale with the load. */
async function withHealth(port: number, durationMs: number, work: Promise<PhaseResult[]>): Promise<{ work: PhaseResult[], health: PhaseResult }> {
  const [health] = await runOpenLoop({
    port, phases: [{ name: 'health', ratePerSecond: HEALTH_PER_SECOND, durationMs }],
    mix: [{ name: 'health', path: '/health', weight: 1 }], timeoutMs: TIMEOUT_MS, seed: 7
  })
  return { work: await work, health: health! }
}

interface KindSummary {
  offered: number, ok: number, shed: number, timedOut: number, errors: number, p50Ms: number, p99Ms: number
}
interface StepSummary {
  multiplier: number
  offeredPerSecond: number
  goodputPerSecond: number
  goodputShareOfCapacity: number
  byKind: Record<string, KindSummary>
  health: { offered: number, ok: number }
}
interface TargetSummary {
  /** The target, prefixed `express/` for the Express targets. */
  target: string
  steps: StepSummary[]
  /** After the 5× step, at 0.5×: ms from the overload's end to the end of the last 100 ms bucket with a shed or timed-out request. */
  recovery: { lastShedMs: number, lastTimeoutMs: number, sheddingEndedWithinMs: number }
  serverState?: unknown
}
interface ScenarioSummary {
  scenario: Scenario
  capacityPerSecond: number
  unloaded: { p50Ms: number, p99Ms: number }
  targets: TargetSummary[]
}

function summarizeKinds(phase: PhaseResult): Record<string, KindSummary> {
  const out: Record<string, KindSummary> = {}
  for (const [name, kind] of Object.entries(phase.byKind)) {
    out[name] = {
      offered: kind.offered, ok: kind.ok, shed: kind.shed, timedOut: kind.timedOut, errors: kind.errors,
      p50Ms: quantile(kind.latenciesMs, 0.5), p99Ms: quantile(kind.latenciesMs, 0.99)
    }
  }
  return out
}

function lastBucketEnd(phase: PhaseResult, pick: (b: PhaseResult['timeline'][number]) => number): number {
  let last = 0
  phase.timeline.forEach((bucket, i) => { if (pick(bucket) > 0) last = (i + 1) * phase.bucketMs })
  return last
}

async function runScenario(scenario: Scenario, cpuIterations: number): Promise<ScenarioSummary> {
  // Capacity and unloaded latency, on the unprotected server.
  const base = await startServer(scenario, 'unprotected', cpuIterations)
  // `--capacity N`: the same offered rates in two runs compared (one measurement moves by ±15% on a busy machine).
  const capacityPerSecond = capacityFlag !== undefined ? capacityFlag : await measureCapacity({
    port: base.port, path: '/normal', concurrency: scenario === 'cpu' ? 16 : 64,
    durationMs: quick ? 2000 : 4000, warmupMs: quick ? 1000 : 2000
  })
  const [unloadedPhase] = await runOpenLoop({
    port: base.port, phases: [{ name: 'unloaded', ratePerSecond: capacityPerSecond * 0.3, durationMs: quick ? 2000 : 3000 }],
    mix: WORK_MIX, timeoutMs: TIMEOUT_MS
  })
  await base.stop()
  const unloadedLatencies = Object.values(unloadedPhase!.byKind).flatMap((k) => k.latenciesMs)
  const unloaded = { p50Ms: quantile(unloadedLatencies, 0.5), p99Ms: quantile(unloadedLatencies, 0.99) }
  console.log(`\n## ${scenario}: capacity ${capacityPerSecond.toFixed(0)}/s, unloaded p50 ${unloaded.p50Ms.toFixed(1)} ms, p99 ${unloaded.p99Ms.toFixed(1)} ms` +
    (logs === undefined ? '' : ` — ${LOGGING_NOTE}, the capacity run's included`))

  const summaries: TargetSummary[] = []
  for (const target of targets) {
    const server = await startServer(scenario, target, cpuIterations, capacityPerSecond)
    const phases = [
      { name: 'warmup', ratePerSecond: capacityPerSecond * 0.5, durationMs: 1000 },
      ...MULTIPLIERS.map((m) => ({ name: `${m}x`, ratePerSecond: capacityPerSecond * m, durationMs: stepMs })),
      { name: 'recovery', ratePerSecond: capacityPerSecond * 0.5, durationMs: recoveryMs }
    ]
    const totalMs = phases.reduce((sum, p) => sum + p.durationMs, 0)
    const client = createClient(server.port)
    await client.prewarm(256)
    const { work, health } = await withHealth(server.port, totalMs,
      runOpenLoop({ port: server.port, phases, mix: WORK_MIX, timeoutMs: TIMEOUT_MS, client }))
    client.close()
    let serverState: unknown
    if (target === 'spillway' || target === 'spillway-front') {
      serverState = await fetch(`http://127.0.0.1:${server.port}/_load-shedding`).then((r) => r.json()).catch(() => undefined)
    }
    await server.stop()

    // Health checks are bucketed over the whole run; attribute them to the steps by time.
    const healthOf = (from: number, to: number): { offered: number, ok: number } => {
      let offered = 0
      let ok = 0
      health.timeline.forEach((b, i) => {
        const at = i * health.bucketMs
        if (at >= from && at < to) { offered += b.sent; ok += b.ok }
      })
      return { offered, ok }
    }
    const steps: StepSummary[] = []
    let from = 0
    for (const phase of work) {
      const to = from + phase.durationMs
      const multiplier = Number.parseFloat(phase.name)
      if (Number.isFinite(multiplier)) {
        const byKind = summarizeKinds(phase)
        const ok = Object.values(byKind).reduce((sum, k) => sum + k.ok, 0)
        const offered = Object.values(byKind).reduce((sum, k) => sum + k.offered, 0)
        const goodputPerSecond = (ok * 1000) / phase.durationMs
        steps.push({
          multiplier,
          offeredPerSecond: (offered * 1000) / phase.durationMs,
          goodputPerSecond,
          goodputShareOfCapacity: goodputPerSecond / capacityPerSecond,
          byKind,
          health: healthOf(from, to)
        })
      }
      from = to
    }
    const recoveryPhase = work[work.length - 1]!
    const lastShedMs = lastBucketEnd(recoveryPhase, (b) => b.shed)
    const lastTimeoutMs = lastBucketEnd(recoveryPhase, (b) => b.timedOut + b.errors)
    const summary: TargetSummary = {
      target: framework === 'express' ? `express/${target}` : target, steps,
      recovery: { lastShedMs, lastTimeoutMs, sheddingEndedWithinMs: Math.max(lastShedMs, lastTimeoutMs) },
      serverState
    }
    summaries.push(summary)
    printTarget(scenario, summary, unloaded.p99Ms)
  }
  return { scenario, capacityPerSecond, unloaded, targets: summaries }
}

const pct = (part: number, whole: number): string => (whole === 0 ? '–' : `${((100 * part) / whole).toFixed(1)}%`)

function printTarget(_scenario: Scenario, summary: TargetSummary, _unloadedP99: number): void {
  console.log(`\n### ${summary.target}${logs === undefined ? '' : ` (${LOGGING_NOTE})`}`)
  console.log('| load | offered/s | goodput/s | of capacity | high ok | high p50/p99 ms | normal ok | low ok | shed h/n/l | timed out | health ok |')
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
  for (const step of summary.steps) {
    const h = step.byKind.high!
    const n = step.byKind.normal!
    const l = step.byKind.low!
    const timedOut = h.timedOut + n.timedOut + l.timedOut
    const offered = h.offered + n.offered + l.offered
    console.log(`| ${step.multiplier}× | ${step.offeredPerSecond.toFixed(0)} | ${step.goodputPerSecond.toFixed(0)} | ${pct(step.goodputShareOfCapacity, 1)} | ` +
      `${pct(h.ok, h.offered)} | ${h.p50Ms.toFixed(1)} / ${h.p99Ms.toFixed(1)} | ${pct(n.ok, n.offered)} | ${pct(l.ok, l.offered)} | ` +
      `${pct(h.shed, h.offered)} / ${pct(n.shed, n.offered)} / ${pct(l.shed, l.offered)} | ${pct(timedOut, offered)} | ${pct(step.health.ok, step.health.offered)} |`)
  }
  console.log(`recovery after 5× (at 0.5×): last shed ${summary.recovery.lastShedMs} ms, last timeout/error ${summary.recovery.lastTimeoutMs} ms`)
}

function markdown(results: ScenarioSummary[], cpuIterations: number): string {
  const lines = [`# Overload benchmark (${framework})${logs === undefined ? '' : ` — ${LOGGING_NOTE}`}`, '', `Node ${process.version}, ${quick ? 'quick' : 'full'} run, step ${stepMs} ms, client timeout ${TIMEOUT_MS} ms, CPU work ${cpuIterations} iterations (~2 ms), ${new Date().toISOString()}`, '']
  for (const scenario of results) {
    lines.push(`## ${scenario.scenario}: capacity ${scenario.capacityPerSecond.toFixed(0)}/s, unloaded p99 ${scenario.unloaded.p99Ms.toFixed(1)} ms`, '')
    lines.push('| target | load | goodput/s | of capacity | high ok | high p99 ms | normal ok | low ok | shed h/n/l | timed out | health ok |')
    lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
    for (const target of scenario.targets) {
      for (const step of target.steps) {
        const h = step.byKind.high!
        const n = step.byKind.normal!
        const l = step.byKind.low!
        const offered = h.offered + n.offered + l.offered
        lines.push(`| ${target.target} | ${step.multiplier}× | ${step.goodputPerSecond.toFixed(0)} | ${pct(step.goodputShareOfCapacity, 1)} | ` +
          `${pct(h.ok, h.offered)} | ${h.p99Ms.toFixed(1)} | ${pct(n.ok, n.offered)} | ${pct(l.ok, l.offered)} | ` +
          `${pct(h.shed, h.offered)} / ${pct(n.shed, n.offered)} / ${pct(l.shed, l.offered)} | ${pct(h.timedOut + n.timedOut + l.timedOut, offered)} | ${pct(step.health.ok, step.health.offered)} |`)
      }
    }
    lines.push('', 'Shedding/timeouts ended after the overload stopped (5× → 0.5×): ' +
      scenario.targets.map((t) => `${t.target} ${t.recovery.sheddingEndedWithinMs} ms`).join(', '), '')
  }
  return lines.join('\n')
}

const cpuIterations = calibrateCpuWork(2)
console.log(`# overload benchmark (${quick ? 'quick' : 'full'}), CPU work = ${cpuIterations} iterations ≈ 2 ms`)
const results: ScenarioSummary[] = []
try {
  for (const scenario of scenarios) results.push(await runScenario(scenario, cpuIterations))
} finally {
  killServers()
  logs?.remove()
}
const outDir = join(here, '..', 'report')
mkdirSync(outDir, { recursive: true })
const stamp = new Date().toISOString().replace(/[:.]/g, '-')
writeFileSync(join(outDir, `overload-${stamp}.json`), JSON.stringify({ framework, quick, stepMs, cpuIterations, requestLogging: logging, results }, null, 2))
const md = markdown(results, cpuIterations)
writeFileSync(join(outDir, 'latest.md'), md)
console.log(`\nwrote ${join(outDir, `overload-${stamp}.json`)} and latest.md`)
