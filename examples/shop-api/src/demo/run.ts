/**
 * `pnpm demo`: the shop API unprotected and protected, each as a real process on 127.0.0.1, driven
 * through the same scripted scenario by the overload benchmark's open-loop generator, then a
 * closed-loop retry storm; a live line per second, a side-by-side table, and an offline HTML report. Flags: `--quick` (half-length
 * phases), `--out <file>` (report path). Bounded: ~1.5 min.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runClosedLoop } from '@spillway/overload-bench/closed-loop'
import { measureCapacity, runOpenLoop, type PhaseResult } from '@spillway/overload-bench/open-loop'
import { calibrateCpuWork } from '@spillway/overload-bench/scenario-app'
import type { ShopSnapshot } from '../snapshot.js'
import { liveLine } from './live-view.js'
import { renderReport } from './report.js'
import {
  HEALTH_MIX, HEALTH_PER_SECOND, MIX, STORM_CLIENTS, STORM_MIX, STORM_SECONDS, TEMPLATES, scriptedPhases, type ScriptedPhase
} from './scenario.js'
import { ShopClient } from './shop-client.js'
import { figuresOf, markdownTable, summaryRows, verdict, type ServerSample, type StormResult, type TargetRun } from './summary.js'
import { startTarget, type TargetProcess } from './target-process.js'
import { Timeline } from './timeline.js'

const args = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name)
  return i === -1 ? undefined : args[i + 1]
}
const scale = args.includes('--quick') ? 0.5 : 1
const TIMEOUT_MS = 1000
const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const reportPath = resolve(flag('--out') ?? resolve(packageDir, 'report', 'index.html'))

async function readState(port: number): Promise<ShopSnapshot | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/spillway/state`, { signal: AbortSignal.timeout(900) })
    return await response.json() as ShopSnapshot
  } catch {
    return undefined // an overloaded unprotected server may not answer in time: a gap in the plot
  }
}

export interface DemoTargetResult extends TargetRun {
  timeline: Timeline
}

async function runTarget(target: TargetRun['target'], server: TargetProcess, phases: readonly ScriptedPhase[]): Promise<DemoTargetResult> {
  const totalMs = phases.reduce((sum, p) => sum + p.durationMs, 0)
  const startMs = performance.now()
  const sent = new Timeline(startMs)
  const settled = new Timeline(startMs)
  const record = (name: string, status: number, sentAtMs: number, latencyMs: number): void => {
    const requestClass = TEMPLATES[name]?.class ?? 'normal'
    sent.record(requestClass, status, sentAtMs, latencyMs)
    settled.record(requestClass, status, sentAtMs + latencyMs, latencyMs)
  }
  const client = new ShopClient(server.port, TEMPLATES, record)
  const healthClient = new ShopClient(server.port, TEMPLATES, record)
  await client.prewarm(64)

  const timers: NodeJS.Timeout[] = []
  let phaseStartMs = 0
  for (const phase of phases) {
    timers.push(setTimeout(() => server.send({ type: 'slowdown', factor: phase.databaseSlowdown }), phaseStartMs))
    phaseStartMs += phase.durationMs
  }
  const samples: ServerSample[] = []
  let second = 0
  const ticker = setInterval(() => {
    second++
    const at = second
    // The line describes the second that just ended: its phase is the one that second was in.
    const describedMs = (at - 1) * 1000
    let offset = 0
    const phase = phases.find((p) => (offset += p.durationMs) > describedMs) ?? phases[phases.length - 1]!
    void readState(server.port).then((state) => {
      const sample: ServerSample | undefined = state === undefined
        ? undefined
        : {
            second: at,
            level: state.degradation?.level ?? null,
            featuresOff: state.degradation?.featuresOff ?? [],
            pressure: state.loadShedding?.pressure ?? null,
            limit: state.loadShedding?.limit ?? null,
            databaseWaiting: state.database.waiting
          }
      if (sample !== undefined) samples.push(sample)
      console.log(liveLine({ target, elapsedSeconds: at, totalSeconds: Math.round(totalMs / 1000), phaseLabel: phase.label, bucket: settled.bucket(at - 1), server: sample }))
    })
  }, 1000)

  let work: PhaseResult[]
  let health: PhaseResult[]
  try {
    [work, health] = await Promise.all([
      runOpenLoop({ port: server.port, phases, mix: MIX, timeoutMs: TIMEOUT_MS, client: client.asRawClient(), seed: 1 }),
      runOpenLoop({
        port: server.port,
        phases: [{ name: 'health', ratePerSecond: HEALTH_PER_SECOND, durationMs: totalMs }],
        mix: HEALTH_MIX,
        timeoutMs: TIMEOUT_MS,
        client: healthClient.asRawClient(),
        seed: 7
      })
    ])
  } finally {
    clearInterval(ticker)
    for (const timer of timers) clearTimeout(timer)
    client.close()
    healthClient.close()
  }
  const storm = await runStorm(target, server)
  return { target, phases: work, health: health[0]!, server: samples.sort((a, b) => a.second - b.second), timeline: sent, storm }
}

/** The retry storm (`STORM_MIX`), after the scripted phases, on the same server. */
async function runStorm(target: TargetRun['target'], server: TargetProcess): Promise<StormResult> {
  const durationMs = Math.round(STORM_SECONDS * 1000 * scale)
  console.log(`${target}: retry storm, ${STORM_CLIENTS} clients each sending again as soon as they get any answer, ${durationMs / 1000} s …`)
  // Each shopper its own API key, so that the storm is the load shedder's to handle, not the per-key rate limit's.
  const result = await runClosedLoop({
    port: server.port, clients: STORM_CLIENTS, rampMs: 0, durationMs, timeoutMs: TIMEOUT_MS, mix: STORM_MIX, userHeader: 'x-api-key', seed: 3
  })
  const kinds = Object.values(result.byKind)
  const perSecond = (count: number): number => count / (durationMs / 1000)
  const storm: StormResult = {
    clients: STORM_CLIENTS,
    goodputPerSecond: perSecond(kinds.reduce((sum, k) => sum + k.ok, 0)),
    refusedPerSecond: perSecond(kinds.reduce((sum, k) => sum + k.refused, 0)),
    timedOutPerSecond: perSecond(kinds.reduce((sum, k) => sum + k.timedOut, 0))
  }
  console.log(`${target}: retry storm goodput ${storm.goodputPerSecond.toFixed(0)}/s, ${storm.refusedPerSecond.toFixed(0)} refusals/s, ` +
    `${storm.timedOutPerSecond.toFixed(0)} timeouts/s`)
  return storm
}

async function main(): Promise<void> {
  const startedAt = new Date()
  const cpuIterationsPerMs = calibrateCpuWork(1)
  const env = { CPU_ITERATIONS_PER_MS: String(cpuIterationsPerMs), REDIS_PREFIX: `shop-demo:${process.pid}:` }

  console.log('spillway demo: starting the shop API unprotected, measuring its capacity on GET /products/:id …')
  const unprotected = await startTarget(false, env)
  let capacityPerSecond: number
  let unprotectedRun: DemoTargetResult
  let phases: ScriptedPhase[]
  try {
    capacityPerSecond = await measureCapacity({ port: unprotected.port, path: '/products/1', concurrency: 16, durationMs: 2000, warmupMs: 700 })
    phases = scriptedPhases(capacityPerSecond, scale)
    console.log(`capacity ≈ ${capacityPerSecond.toFixed(0)} req/s; scenario: ${phases.map((p) => `${p.label} ${p.durationMs / 1000} s at ${p.ratePerSecond}/s`).join(', ')}`)
    console.log(`\n— unprotected (the same app without the plugins) —`)
    unprotectedRun = await runTarget('unprotected', unprotected, phases)
  } finally {
    await unprotected.stop()
  }
  console.log(`\n— protected (rate limit + load shedding + degradation) —`)
  const protectedServer = await startTarget(true, env)
  let protectedRun: DemoTargetResult
  try {
    protectedRun = await runTarget('protected', protectedServer, phases)
  } finally {
    await protectedServer.stop()
  }

  const unprotectedFigures = figuresOf(unprotectedRun)
  const protectedFigures = figuresOf(protectedRun)
  const rows = summaryRows(unprotectedFigures, protectedFigures)
  console.log(`\nSame scenario, same machine, capacity ${capacityPerSecond.toFixed(0)} req/s, client timeout ${TIMEOUT_MS} ms:\n`)
  console.log(markdownTable(rows))
  const { won, failed } = verdict(unprotectedFigures, protectedFigures)
  console.log(won
    ? '\nProtected beats unprotected on goodput (the scripted phases and the retry storm) and checkout success, and answers at least as many health checks.'
    : `\nProtected did NOT beat unprotected on: ${failed.join(', ')} (see the report; a busy machine can do this).`)

  mkdirSync(dirname(reportPath), { recursive: true })
  writeFileSync(reportPath, renderReport({
    startedAt,
    capacityPerSecond,
    timeoutMs: TIMEOUT_MS,
    phases,
    rows,
    runs: [unprotectedRun, protectedRun]
  }))
  console.log(`\nReport (offline HTML): ${reportPath}`)
}

await main()
