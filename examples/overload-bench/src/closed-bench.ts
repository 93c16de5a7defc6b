/**
 * Closed-loop overload: a crowd of N clients, each sending its next request as soon as it gets any
 * answer (a 503 included), against the unprotected server, `@fastify/under-pressure` and ours, each
 * in its own child process, one after the other in the same run. At its 1 s timeout a client gives
 * up, closes its connection and starts again on a new one (`reconnect`, a browser or an SDK with a
 * timeout), or keeps waiting (`--wait`, as wrk does). Goodput counts 2xx answered within 1 s, as a
 * share of the capacity measured first on the unprotected server.
 *
 *   pnpm --filter @spillway/overload-bench bench:closed [--clients 200,2000] [--scenario cpu,io]
 *        [--target unprotected,under-pressure,spillway,spillway-front] [--seconds 10] [--wait]
 */
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { runClosedLoop, type ClosedLoopResult } from './closed-loop.js'
import { measureCapacity, quantile, type RequestKind } from './open-loop.js'
import { calibrateCpuWork, SCENARIOS, TARGETS, type Scenario, type Target } from './scenario-app.js'
import { forkServer, killServers } from './server-child.js'

const here = dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
const flag = (name: string): string | undefined => {
  const i = args.indexOf(name)
  return i === -1 ? undefined : args[i + 1]
}
const clientCounts = (flag('--clients') ?? '200,2000').split(',').map(Number)
const scenarios = (flag('--scenario')?.split(',') ?? SCENARIOS) as Scenario[]
const targets = (flag('--target')?.split(',') ?? TARGETS) as Target[]
const seconds = Number(flag('--seconds') ?? 10)
const onTimeout = args.includes('--wait') ? 'wait' : 'reconnect'
const TIMEOUT_MS = 1000

/** The open-loop benchmark's mix: 10% high, 60% normal, 30% low. */
const MIX: readonly RequestKind[] = [
  { name: 'high', path: '/high', weight: 10 },
  { name: 'normal', path: '/normal', weight: 60 },
  { name: 'low', path: '/low', weight: 30 }
]

function startServer(scenario: Scenario, target: Target, cpuIterations: number, capacityPerSecond = 0): ReturnType<typeof forkServer> {
  return forkServer(join(here, 'server-process.ts'), [scenario, target, String(cpuIterations), 'fastify', String(capacityPerSecond)],
    { name: `server ${scenario}/${target}` })
}

function row(target: Target, result: ClosedLoopResult, capacityPerSecond: number): string {
  const perSecond = (n: number): number => n / (result.durationMs / 1000)
  const kinds = Object.values(result.byKind)
  const sum = (pick: (k: ClosedLoopResult['byKind'][string]) => number): number => kinds.reduce((s, k) => s + pick(k), 0)
  const high = result.byKind.high
  const highShare = high === undefined || high.sent === 0 ? 0 : high.ok / high.sent
  const okPerSecond = perSecond(sum((k) => k.ok))
  return `| ${target} | ${result.clients} | ${okPerSecond.toFixed(0)} | ${(100 * okPerSecond / capacityPerSecond).toFixed(1)}% | ` +
    `${perSecond(high?.ok ?? 0).toFixed(0)} (${(100 * highShare).toFixed(1)}% of its requests) | ${quantile(high?.latenciesMs ?? [], 0.99).toFixed(0)} ms | ` +
    `${perSecond(sum((k) => k.refused)).toFixed(0)} | ${perSecond(sum((k) => k.timedOut)).toFixed(0)} | ${perSecond(result.connects).toFixed(0)} | ` +
    `${perSecond(sum((k) => k.errors)).toFixed(0)} |`
}

const cpuIterations = calibrateCpuWork(2)
console.log(`# closed-loop overload benchmark: ${seconds} s per run, client timeout ${TIMEOUT_MS} ms (${onTimeout}), CPU work ≈ 2 ms`)
try {
  for (const scenario of scenarios) {
    const base = await startServer(scenario, 'unprotected', cpuIterations)
    const capacityPerSecond = await measureCapacity({
      port: base.port, path: '/normal', concurrency: scenario === 'cpu' ? 16 : 64, durationMs: 4000, warmupMs: 2000
    })
    await base.stop()
    console.log(`\n## ${scenario}: capacity ${capacityPerSecond.toFixed(0)}/s`)
    console.log('| target | clients | goodput/s | of capacity | high ok/s | high p99 | refused/s | timed out/s | new connections/s | errors/s |')
    console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    for (const clients of clientCounts) {
      for (const target of targets) {
        const server = await startServer(scenario, target, cpuIterations, capacityPerSecond)
        // The connections open over 2 s: thousands of SYNs at once overflow the accept backlog.
        const result = await runClosedLoop({
          port: server.port, clients, rampMs: 2000, durationMs: seconds * 1000, timeoutMs: TIMEOUT_MS, onTimeout, mix: MIX
        })
        await server.stop()
        console.log(row(target, result, capacityPerSecond))
      }
    }
  }
} finally {
  killServers()
}
