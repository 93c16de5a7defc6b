/**
 * Child process: one scenario app behind one target on 127.0.0.1, port sent to the parent over
 * IPC. Exits when the parent disconnects (so a crashed parent never leaves it behind).
 */
import { subscribe } from 'node:diagnostics_channel'
import { appendFileSync } from 'node:fs'
import { UPDATE_CHANNEL, type LoadSheddingState } from '@spillway/load-shedding'
import type { ExpressTarget } from '../../../packages/express/bench/scenario-app.js'
import { createScenarioApp, type Scenario, type Target } from './scenario-app.js'

const [scenario, target, cpuIterations, framework, capacityPerSecond] = process.argv.slice(2)
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
  const app = await createScenarioApp({
    scenario: scenario as Scenario,
    target: target as Target,
    cpuIterations: Number(cpuIterations)
  })
  traceControlSteps()
  // The same generous accept backlog for every target, so that none loses requests to SYN drops.
  await app.listen({ port: 0, host: '127.0.0.1', backlog: 2048 })
  const address = app.server.address()
  process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 })
  const stop = (): void => { void app.close().finally(() => process.exit(0)) }
  process.on('disconnect', stop)
  process.on('SIGTERM', stop)
}

/** The Express targets live with @spillway/express, so that this benchmark needs no Express dependency. */
async function serveExpress(): Promise<void> {
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
