/**
 * Closed-loop overload: a crowd of N clients, each sending its next request as soon as it gets any
 * answer (a 503 included), against the unprotected server, `@fastify/under-pressure` and ours, each
 * in its own child process, one after the other in the same run. At its 1 s timeout a client gives
 * up, closes its connection and starts again on a new one (`reconnect`, a browser or an SDK with a
 * timeout), or keeps waiting (`--wait`, as wrk does). Goodput counts 2xx answered within 1 s, as a
 * share of the capacity measured first on the unprotected server. One extra client checks
 * `/health` (priority `critical`) every 100 ms throughout.
 *
 *   pnpm --filter @spillway/overload-bench bench:closed [--clients 200,2000,5000] [--scenario cpu,io,pg]
 *        [--target unprotected,under-pressure,spillway,spillway-front] [--seconds 10] [--wait]
 *        [--ramp-ms 1500] [--slow-db 5] [--log] [--framework fastify|express]
 */
import { execFileSync } from 'node:child_process'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runClosedLoop, type ClosedLoopResult } from './closed-loop.js'
import { EXPRESS_TARGETS, parseFramework, scenariosFor } from './frameworks.js'
import { runHealthChecks, type HealthChecksResult } from './health-checks.js'
import { measureCapacity, quantile } from './open-loop.js'
import { withPostgresFallback } from './postgres-fallback.js'
import { DATABASE_URL } from './postgres-pool.js'
import { LOGGING_NOTE, RequestLogs } from './request-log.js'
import { calibrateCpuWork, PG_POOL, SCENARIOS, TARGETS, WORK_MIX, type Scenario, type Target } from './scenario-app.js'
import { forkServer, killServers, type ServerChild } from './server-child.js'
import type { SlowDatabaseMessage } from './server-process.js'
import { flag, hasFlag } from './command-line.js'

const here = dirname(fileURLToPath(import.meta.url))
if (hasFlag('--help')) {
  console.log('usage: bench:closed [--clients 200,2000,5000] [--scenario cpu,io,pg] [--target …] [--seconds 10] [--wait]')
  console.log('       [--ramp-ms N] [--slow-db FACTOR] [--log] [--framework fastify|express]')
  process.exit(0)
}
const framework = parseFramework(flag('--framework'))
const clientCounts = (flag('--clients') ?? '200,2000,5000').split(',').map(Number)
const targets = (flag('--target')?.split(',') ?? (framework === 'express' ? EXPRESS_TARGETS : TARGETS)) as Target[]
const seconds = Number(flag('--seconds') ?? 10)
const onTimeout = hasFlag('--wait') ? 'wait' : 'reconnect'
const rampMsFlag = flag('--ramp-ms')
const slowFactor = flag('--slow-db') === undefined ? undefined : Number(flag('--slow-db'))
if (slowFactor !== undefined && !(slowFactor > 0)) throw new Error(`--slow-db must be a factor > 0, got ${flag('--slow-db')}`)
const logging = hasFlag('--log')
if (logging && framework === 'express') throw new Error('--log turns on Fastify\'s request logging; the Express targets have none')
const TIMEOUT_MS = 1000
const HEALTH_INTERVAL_MS = 100
/** Sockets this process needs besides one per client: health checks, the capacity probe, IPC, stdio. */
const SPARE_FILE_DESCRIPTORS = 256


/**
 * Thousands of clients connecting in the same millisecond overflow the server's accept backlog
 * (SYNs dropped, retried a second later: past the client's timeout), so a large crowd arrives over
 * 1.5 s; a few hundred connect at once without loss.
 */
function rampMsFor(clients: number): number {
  return rampMsFlag === undefined ? (clients > 1000 ? 1500 : 0) : Number(rampMsFlag)
}

/** The soft limit on open files of this process (and of the servers it forks, which inherit it). */
function openFileLimit(): number {
  try {
    const limit = Number(execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim())
    return Number.isFinite(limit) ? limit : Number.POSITIVE_INFINITY
  } catch {
    return Number.POSITIVE_INFINITY
  }
}

function startServer(scenario: Scenario, target: Target, cpuIterations: number, capacityPerSecond: number, logFile?: string): Promise<ServerChild> {
  return forkServer(join(here, 'server-process.ts'),
    [scenario, target, String(cpuIterations), framework, String(capacityPerSecond), logFile ?? ''],
    { name: `server ${scenario}/${target}` })
}

/**
 * Goodput per second before, during and after the slow database: the counted part in thirds, the
 * middle one slow. From the answers' timeline, so a request sent before the database slowed down
 * and answered during it counts in the slow third.
 */
function goodputByPhase(result: ClosedLoopResult): [number, number, number] {
  const thirdMs = result.durationMs / 3
  const sums = [0, 0, 0]
  const buckets = [0, 0, 0]
  result.okTimeline.forEach((ok, i) => {
    const phase = Math.min(2, Math.floor((i * result.bucketMs) / thirdMs))
    sums[phase] = (sums[phase] ?? 0) + ok
    buckets[phase] = (buckets[phase] ?? 0) + 1
  })
  const perSecond = (phase: number): number => (sums[phase] ?? 0) / Math.max(1, (buckets[phase] ?? 0) * result.bucketMs / 1000)
  return [perSecond(0), perSecond(1), perSecond(2)]
}

function row(target: string, result: ClosedLoopResult, health: HealthChecksResult, capacityPerSecond: number, slow: boolean): string {
  const perSecond = (n: number): number => n / (result.durationMs / 1000)
  const kinds = Object.values(result.byKind)
  const sum = (pick: (k: ClosedLoopResult['byKind'][string]) => number): number => kinds.reduce((s, k) => s + pick(k), 0)
  const high = result.byKind.high
  const highShare = high === undefined || high.sent === 0 ? 0 : high.ok / high.sent
  const okPerSecond = perSecond(sum((k) => k.ok))
  const healthShare = health.sent === 0 ? '–' : `${(100 * health.ok / health.sent).toFixed(1)}%`
  const healthP99 = health.latenciesMs.length === 0 ? '–' : `${quantile(health.latenciesMs, 0.99).toFixed(0)} ms`
  const phases = slow ? ` ${goodputByPhase(result).map((g) => g.toFixed(0)).join(' / ')} |` : ''
  return `| ${target} | ${result.clients} | ${okPerSecond.toFixed(0)} | ${(100 * okPerSecond / capacityPerSecond).toFixed(1)}% |${phases} ` +
    `${perSecond(high?.ok ?? 0).toFixed(0)} (${(100 * highShare).toFixed(1)}% of its requests) | ${quantile(high?.latenciesMs ?? [], 0.99).toFixed(0)} ms | ` +
    `${perSecond(sum((k) => k.refused)).toFixed(0)} | ${perSecond(sum((k) => k.timedOut)).toFixed(0)} | ${perSecond(result.connects).toFixed(0)} | ` +
    `${perSecond(sum((k) => k.errors)).toFixed(0)} | ${healthShare} | ${healthP99} | ${result.generatorLagP99Ms.toFixed(0)} ms |`
}

/** One crowd against one server: the health checks and the slow database lined up with the counted part. */
async function runCrowd(server: ServerChild, clients: number, slow: boolean): Promise<{ result: ClosedLoopResult, health: HealthChecksResult }> {
  const durationMs = seconds * 1000
  const started: { health?: Promise<HealthChecksResult> } = {}
  const timers: NodeJS.Timeout[] = []
  const tell = (message: SlowDatabaseMessage): void => { server.child.send(message) }
  const result = await runClosedLoop({
    port: server.port, clients, rampMs: rampMsFor(clients), durationMs, timeoutMs: TIMEOUT_MS, onTimeout, mix: WORK_MIX,
    onCountStart: () => {
      started.health = runHealthChecks({ port: server.port, intervalMs: HEALTH_INTERVAL_MS, durationMs, timeoutMs: TIMEOUT_MS })
      if (slow && slowFactor !== undefined) {
        timers.push(setTimeout(() => tell({ slowFactor }), durationMs / 3), setTimeout(() => tell({ slowFactor: 1 }), (2 * durationMs) / 3))
      }
    }
  })
  for (const timer of timers) clearTimeout(timer)
  const health = (await started.health) ?? { sent: 0, ok: 0, latenciesMs: [] }
  return { result, health }
}

const requested = (flag('--scenario')?.split(',') ?? SCENARIOS) as Scenario[]
const scenarios = await withPostgresFallback(scenariosFor(framework, requested), DATABASE_URL)
if (slowFactor !== undefined && !scenarios.includes('pg')) console.log("!! --slow-db slows PostgreSQL, so only the 'pg' scenario: no slow step in this run")
const largestCrowd = Math.max(...clientCounts)
const fileLimit = openFileLimit()
if (largestCrowd + SPARE_FILE_DESCRIPTORS > fileLimit) {
  throw new Error(`ulimit -n is ${fileLimit}: a crowd of ${largestCrowd} clients needs a socket each here and in the server; ` +
    `raise it (ulimit -n ${2 * (largestCrowd + SPARE_FILE_DESCRIPTORS)}) or ask for fewer --clients`)
}

const logs = logging ? new RequestLogs() : undefined
const cpuIterations = calibrateCpuWork(2)
console.log(`# closed-loop overload benchmark (${framework}): ${seconds} s per run after the ramp, client timeout ${TIMEOUT_MS} ms (${onTimeout}), ` +
  `CPU work ≈ 2 ms, a health check every ${HEALTH_INTERVAL_MS} ms, open-file limit ${fileLimit}`)
try {
  for (const scenario of scenarios) {
    const base = await startServer(scenario, 'unprotected', cpuIterations, 0, logs?.fileFor(`${scenario}-capacity`))
    const capacityPerSecond = await measureCapacity({
      port: base.port, path: '/normal', concurrency: scenario === 'cpu' ? 16 : 64, durationMs: 4000, warmupMs: 2000
    })
    await base.stop()
    const slow = slowFactor !== undefined && scenario === 'pg'
    const notes = [
      scenario === 'pg' ? `PostgreSQL pool of ${PG_POOL.maxConnections}, ${PG_POOL.queryMs} ms queries` : undefined,
      slow ? `database ${slowFactor}× slower in the middle third of each run` : undefined,
      logs === undefined ? undefined : `${LOGGING_NOTE}, the capacity run's included`
    ].filter((note) => note !== undefined)
    console.log(`\n## ${scenario}: capacity ${capacityPerSecond.toFixed(0)}/s${notes.length === 0 ? '' : ` — ${notes.join('; ')}`}`)
    console.log(`| target | clients | goodput/s | of capacity |${slow ? ` goodput/s before / ${slowFactor}× slow / after |` : ''} high ok/s | high p99 | ` +
      'refused/s | timed out/s | new connections/s | errors/s | health ok | health p99 | generator lag p99 |')
    console.log(`| --- | ---: | ---: | ---: |${slow ? ' ---: |' : ''} ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`)
    const logSizes: string[] = []
    for (const clients of clientCounts) {
      for (const target of targets) {
        const name = `${scenario}-${target}-${clients}`
        const server = await startServer(scenario, target, cpuIterations, capacityPerSecond, logs?.fileFor(name))
        const { result, health } = await runCrowd(server, clients, slow)
        await server.stop()
        console.log(row(framework === 'express' ? `express/${target}` : target, result, health, capacityPerSecond, slow))
        if (logs !== undefined) {
          const size = logs.sizeOf(name)
          logSizes.push(`${target} × ${clients}: ${size.lines} lines, ${size.megabytes.toFixed(1)} MB`)
        }
      }
    }
    if (logSizes.length > 0) console.log(`\nrequest log written (ramp included): ${logSizes.join('; ')}`)
  }
} finally {
  killServers()
  logs?.remove()
}
