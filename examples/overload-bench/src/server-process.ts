/**
 * Child process: one scenario app behind one target on 127.0.0.1, port sent to the parent over
 * IPC. Exits when the parent disconnects (so a crashed parent never leaves it behind).
 *
 *   server-process.ts <scenario> <target> <cpuIterations> <fastify|express> <capacityPerSecond> [logFile]
 *
 * `logFile`: Fastify's request logging into that file. In the `pg` scenario the parent may send
 * `{ slowFactor }` (a `SlowDatabaseMessage`) to make every later query that many times slower.
 */
import { subscribe } from 'node:diagnostics_channel'
import { appendFileSync } from 'node:fs'
import { UPDATE_CHANNEL, type LoadSheddingState } from '@spillway/load-shedding'
import type { ExpressTarget } from '../../../packages/express/bench/scenario-app.js'
import { DATABASE_URL, PostgresPool } from './postgres-pool.js'
import { createScenarioApp, PG_POOL, type Scenario, type Target } from './scenario-app.js'

/** What the parent sends to slow the database down (`slowFactor` > 1) or bring it back (1). */
export interface SlowDatabaseMessage {
  slowFactor: number
}

const [scenario, target, cpuIterations, framework, capacityPerSecond, logFile] = process.argv.slice(2)
if (framework === 'express') await serveExpress()
else await serveFastify()

/** SPILLWAY_TRACE=<file>: one line per control step, to see how the controller moved. */
function traceControlSteps(): void {
  const trace = process.env.SPILLWAY_TRACE
  if (trace === undefined) return
  const t0 = performance.now()
  subscribe(UPDATE_CHANNEL, (message) => {
    const s = message as LoadSheddingState
    const e = s.signals.eventLoop
    const q = s.signals.queue
    appendFileSync(trace, `${(performance.now() - t0).toFixed(0)} adm=${s.threshold.admittedLevels} lim=${s.limit.toFixed(1)} ` +
      `inf=${s.signals.concurrency.peakInFlight} arr=${s.rates.arrivalPerSecond.toFixed(0)} ok=${s.rates.admittedPerSecond.toFixed(0)} ` +
      `cap=${s.rates.capacityPerSecond.toFixed(0)} p50=${e.delayP50Ms.toFixed(1)} p99=${e.delayP99Ms.toFixed(1)} ` +
      `elu=${e.utilization.toFixed(2)}/${e.smoothedUtilization.toFixed(2)} over=${s.overloaded} drain=${s.draining} ` +
      `queue=${q.length}/${q.peakLength} ran=${q.dispatched} expired=${q.expired}\n`)
  })
}

async function serveFastify(): Promise<void> {
  const database = scenario === 'pg' ? new PostgresPool({ connectionString: DATABASE_URL, ...PG_POOL }) : undefined
  const app = await createScenarioApp({
    scenario: scenario as Scenario,
    target: target as Target,
    cpuIterations: Number(cpuIterations),
    ...(database === undefined ? {} : { database }),
    ...(logFile === undefined || logFile === '' ? {} : { logFile })
  })
  if (database !== undefined) {
    process.on('message', (message: unknown) => {
      const slowFactor = (message as Partial<SlowDatabaseMessage> | null)?.slowFactor
      if (typeof slowFactor === 'number' && slowFactor > 0) database.slowFactor = slowFactor
    })
  }
  traceControlSteps()
  // The same generous accept backlog for every Fastify target (the Express ones listen with 2048), so
  // that none loses requests to SYN drops: a closed-loop crowd of thousands reconnects in bursts
  // after its timeouts. Linux caps it at net.core.somaxconn (4096 by default since Linux 5.4).
  await app.listen({ port: 0, host: '127.0.0.1', backlog: 4096 })
  const address = app.server.address()
  process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 })
  const stop = (): void => { void app.close().then(() => database?.close()).finally(() => process.exit(0)) }
  process.on('disconnect', stop)
  process.on('SIGTERM', stop)
}

/** The Express targets live with @spillway/express, so that this benchmark needs no Express dependency. */
async function serveExpress(): Promise<void> {
  // The Express scenario app knows 'cpu' and 'io' only; it would run 'pg' as the simulated pool.
  if (scenario === 'pg') throw new Error("the Express targets have no 'pg' scenario")
  const { listenExpressScenario } = await import('../../../packages/express/bench/scenario-app.js')
  const { server, stop } = await listenExpressScenario({
    scenario: scenario as Scenario,
    target: target as ExpressTarget,
    cpuIterations: Number(cpuIterations),
    capacityPerSecond: Number(capacityPerSecond)
  })
  traceControlSteps()
  const address = server.address()
  process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 })
  const exit = (): void => { stop(); process.exit(0) }
  process.on('disconnect', exit)
  process.on('SIGTERM', exit)
}
