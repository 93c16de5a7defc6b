/**
 * A metastable failure, provoked: users arrive open-loop at a share of the capacity (`--load`,
 * default 0.7), each retrying at once up to three times on a refusal or a timeout (a naive SDK);
 * in the middle third of the run the real PostgreSQL database is `--slow-db` times slower (default
 * 5), then fast again. The question is what happens after it recovers: the retries that the slow
 * phase caused can keep the server overloaded with the cause gone (Bronson et al., HotOS 2021;
 * Huang et al., OSDI 2022). Unprotected, `@fastify/under-pressure` and ours, one after the other.
 *
 *   pnpm --filter @spillway/overload-bench bench:metastable [--load 0.7] [--slow-db 5] [--phase-seconds 5]
 *        [--target unprotected,under-pressure,spillway,spillway-front]
 */
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { measureCapacity } from './open-loop.js'
import { describeDatabase, postgresAnswers } from './postgres-fallback.js'
import { DATABASE_URL } from './postgres-pool.js'
import { runRetryingUsers, type RetryingUsersResult } from './retrying-users.js'
import { PG_POOL, TARGETS, WORK_MIX, type Target } from './scenario-app.js'
import { forkServer, killServers } from './server-child.js'
import type { SlowDatabaseMessage } from './server-process.js'
import { flag } from './command-line.js'

const here = dirname(fileURLToPath(import.meta.url))
const load = Number(flag('--load') ?? 0.7)
const slowFactor = Number(flag('--slow-db') ?? 5)
const phaseMs = 1000 * Number(flag('--phase-seconds') ?? 5)
const targets = (flag('--target')?.split(',') ?? TARGETS) as Target[]
const TIMEOUT_MS = 1000
const RETRIES = 3
/** Recovered: a whole second after the database is fast again with goodput at this share of the arrival rate. */
const RECOVERED_SHARE = 0.9

function perSecondBetween(timeline: readonly number[], bucketMs: number, fromMs: number, toMs: number): number {
  let sum = 0
  for (let i = Math.floor(fromMs / bucketMs); i < Math.floor(toMs / bucketMs) && i < timeline.length; i++) sum += timeline[i] ?? 0
  return sum / ((toMs - fromMs) / 1000)
}

/** Milliseconds from the database's recovery to the first one-second window served at `RECOVERED_SHARE` of the arrivals; undefined if none. */
function recoveryMs(result: RetryingUsersResult, arrivalsPerSecond: number): number | undefined {
  const recoveredAt = 2 * phaseMs
  for (let from = recoveredAt; from + 1000 <= 3 * phaseMs; from += result.bucketMs) {
    if (perSecondBetween(result.okTimeline, result.bucketMs, from, from + 1000) >= RECOVERED_SHARE * arrivalsPerSecond) return from - recoveredAt
  }
  return undefined
}

const database = await postgresAnswers(DATABASE_URL)
if (!database.ok) {
  console.log(`!! PostgreSQL is not reachable at ${describeDatabase(DATABASE_URL)} (${database.reason}): this benchmark slows a real database, so it does not run`)
  process.exit(0)
}
console.log(`# metastable-failure benchmark: users at ${load}× capacity, each retrying at once up to ${RETRIES} times on a refusal or a ` +
  `${TIMEOUT_MS} ms timeout; PostgreSQL (pool of ${PG_POOL.maxConnections}, ${PG_POOL.queryMs} ms queries) ${slowFactor}× slower from ` +
  `${phaseMs / 1000} s to ${(2 * phaseMs) / 1000} s, then fast again`)
try {
  const base = await forkServer(join(here, 'server-process.ts'), ['pg', 'unprotected', '0', 'fastify', '0', ''], { name: 'server pg/capacity' })
  const capacityPerSecond = await measureCapacity({ port: base.port, path: '/normal', concurrency: 64, durationMs: 4000, warmupMs: 2000 })
  await base.stop()
  const arrivalsPerSecond = Math.round(load * capacityPerSecond)
  console.log(`\ncapacity ${capacityPerSecond.toFixed(0)}/s; ${arrivalsPerSecond} users/s arrive\n`)
  console.log('| target | goodput/s before | while slow | after (last half) | recovered after | attempts/s after | users served |')
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const target of targets) {
    const server = await forkServer(join(here, 'server-process.ts'), ['pg', target, '0', 'fastify', String(capacityPerSecond), ''],
      { name: `server pg/${target}` })
    const tell = (message: SlowDatabaseMessage): void => { server.child.send(message) }
    const timers = [setTimeout(() => tell({ slowFactor }), phaseMs), setTimeout(() => tell({ slowFactor: 1 }), 2 * phaseMs)]
    const result = await runRetryingUsers({
      port: server.port, arrivalsPerSecond, durationMs: 3 * phaseMs, timeoutMs: TIMEOUT_MS, retries: RETRIES, mix: WORK_MIX, seed: 5
    })
    for (const timer of timers) clearTimeout(timer)
    await server.stop()
    const ok = (from: number, to: number): string => perSecondBetween(result.okTimeline, result.bucketMs, from, to).toFixed(0)
    const recovered = recoveryMs(result, arrivalsPerSecond)
    console.log(`| ${target} | ${ok(0, phaseMs)} | ${ok(phaseMs, 2 * phaseMs)} | ${ok(2.5 * phaseMs, 3 * phaseMs)} | ` +
      `${recovered === undefined ? 'not within the run' : `${(recovered / 1000).toFixed(1)} s`} | ` +
      `${perSecondBetween(result.sentTimeline, result.bucketMs, 2 * phaseMs, 3 * phaseMs).toFixed(0)} | ` +
      `${((100 * result.served) / result.users).toFixed(1)}% |`)
  }
} finally {
  killServers()
}
