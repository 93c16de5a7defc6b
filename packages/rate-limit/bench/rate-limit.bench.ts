/**
 * `pnpm --filter @spillway/rate-limit bench`
 *
 * 1. HTTP: requests/s of a hello-world route over loopback (autocannon in this process, each
 *    server in a child process), side by side in one run: bare Fastify, @fastify/rate-limit
 *    (memory), ours (memory), ours (Redis). Several rounds in alternating order; each target is
 *    compared with bare Fastify measured in the same round, and the median of those ratios is
 *    reported (the VM is shared and noisy; a ratio within one round cancels most of it).
 * 2. Store: decisions/s of our RedisStore vs rate-limiter-flexible's RateLimiterRedis on the same
 *    ioredis client, the same keys and the same number of decisions in flight.
 *
 * Targets: ours in memory ≥ 95% of bare; ours on Redis ≥ RateLimiterRedis decisions/s.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import autocannon from 'autocannon'
import { Redis } from 'ioredis'
import { RateLimiterRedis } from 'rate-limiter-flexible'
import { RedisStore } from '../src/redis-store.js'
import { newDecision, type BucketPolicy } from '../src/policy.js'
import type { Target } from './server.js'

// BENCH_TARGETS=bare,noop-hook,two-headers,ours-memory-no-headers,ours-memory splits the cost of
// deciding: any hook, two header fields of the same size, our decision without and with headers.
const HTTP_TARGETS = (process.env.BENCH_TARGETS?.split(',') ??
  ['bare', 'fastify-rate-limit', 'ours-memory', 'ours-memory-no-headers', 'ours-redis']) as Target[]
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5)
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 3)
const WARMUP_S = 1
const CONNECTIONS = 50
const STORE_DURATION_MS = Number(process.env.BENCH_STORE_MS ?? 3000)
const IN_FLIGHT = 64
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const serverPath = fileURLToPath(new URL('./server.ts', import.meta.url))

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

async function startServer(target: Target): Promise<{ child: ChildProcess, port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', serverPath, target], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  const lines = createInterface({ input: child.stdout! })
  for await (const line of lines) {
    const { port } = JSON.parse(line) as { port: number }
    return { child, port }
  }
  throw new Error(`server ${target} exited before listening`)
}

async function serverCpuMicros(child: ChildProcess): Promise<number> {
  child.send('cpu')
  const [message] = await once(child, 'message') as [{ cpuMicros: number }]
  return message.cpuMicros
}

interface LoadResult { requestsPerSecond: number, cpuMicrosPerRequest: number, non2xx: number, errors: number, p99Ms: number }

async function load(child: ChildProcess, port: number, seconds: number): Promise<LoadResult> {
  const cpuBefore = await serverCpuMicros(child)
  const result = await autocannon({ url: `http://127.0.0.1:${port}/`, connections: CONNECTIONS, duration: seconds })
  const cpuMicros = (await serverCpuMicros(child)) - cpuBefore
  return {
    requestsPerSecond: result.requests.average,
    cpuMicrosPerRequest: cpuMicros / Math.max(1, result.requests.total),
    non2xx: result.non2xx,
    errors: result.errors,
    p99Ms: result.latency.p99
  }
}

/**
 * Per round, each target's req/s and server CPU µs per request, and both as ratios to bare
 * Fastify measured in the same round.
 */
async function httpBench(): Promise<{ perSecond: Map<Target, number[]>, ratio: Map<Target, number[]>, cpu: Map<Target, number[]> }> {
  const perSecond = new Map<Target, number[]>(HTTP_TARGETS.map((t) => [t, []]))
  const ratio = new Map<Target, number[]>(HTTP_TARGETS.map((t) => [t, []]))
  const cpu = new Map<Target, number[]>(HTTP_TARGETS.map((t) => [t, []]))
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? HTTP_TARGETS : [...HTTP_TARGETS].reverse()
    const thisRound = new Map<Target, LoadResult>()
    for (const target of order) {
      const { child, port } = await startServer(target)
      try {
        await load(child, port, WARMUP_S)
        const result = await load(child, port, DURATION_S)
        if (result.non2xx > 0 || result.errors > 0) throw new Error(`${target}: ${result.non2xx} non-2xx, ${result.errors} errors — the limits must refuse nothing`)
        thisRound.set(target, result)
        perSecond.get(target)!.push(result.requestsPerSecond)
        cpu.get(target)!.push(result.cpuMicrosPerRequest)
        console.log(`  round ${round + 1} ${target.padEnd(24)} ${Math.round(result.requestsPerSecond).toString().padStart(7)} req/s  ` +
          `${result.cpuMicrosPerRequest.toFixed(1).padStart(5)} µs CPU/req  p99 ${result.p99Ms} ms`)
      } finally {
        child.kill('SIGTERM')
        await once(child, 'exit')
      }
    }
    const bare = thisRound.get('bare')!
    for (const target of HTTP_TARGETS) ratio.get(target)!.push(thisRound.get(target)!.requestsPerSecond / bare.requestsPerSecond)
  }
  return { perSecond, ratio, cpu }
}

/** Keeps IN_FLIGHT decisions outstanding for `ms`; decisions per second. */
async function saturate(decide: (i: number) => Promise<unknown>, ms: number): Promise<number> {
  const deadline = performance.now() + ms
  let done = 0
  const worker = async (offset: number) => {
    for (let i = offset; performance.now() < deadline; i += IN_FLIGHT) {
      await decide(i)
      done++
    }
  }
  const started = performance.now()
  await Promise.all(Array.from({ length: IN_FLIGHT }, (_, i) => worker(i)))
  return done / ((performance.now() - started) / 1000)
}

async function storeBench(): Promise<{ ours: number[], flexible: number[] }> {
  const client = new Redis(redisUrl)
  const prefix = `bench-rl-store-${process.pid}`
  const policy: BucketPolicy = { kind: 'bucket', name: 'p', capacity: 1e9, refillPerSecond: 1e9, index: 0, storeId: 'p', windowSeconds: 1 }
  const ours = new RedisStore({ client, prefix })
  const flexible = new RateLimiterRedis({ storeClient: client, keyPrefix: `${prefix}-rlf`, points: 1e9, duration: 10 })
  const keys = Array.from({ length: 1000 }, (_, i) => `10.0.${i >> 8}.${i & 255}`)
  const oursDecide = (i: number) => ours.take([policy], keys[i % keys.length] as string, 1, newDecision(1))
  const flexibleDecide = (i: number) => flexible.consume(keys[i % keys.length] as string, 1)
  const figures = { ours: [] as number[], flexible: [] as number[] }
  await saturate(oursDecide, 300)
  await saturate(flexibleDecide, 300)
  for (let round = 0; round < ROUNDS; round++) {
    const pair: Array<['ours' | 'flexible', (i: number) => Promise<unknown>]> = [['ours', oursDecide], ['flexible', flexibleDecide]]
    if (round % 2 === 1) pair.reverse()
    for (const [name, decide] of pair) {
      const perSecond = await saturate(decide, STORE_DURATION_MS)
      figures[name].push(perSecond)
      console.log(`  round ${round + 1} ${(name === 'ours' ? 'RedisStore (ours)' : 'RateLimiterRedis').padEnd(20)} ${Math.round(perSecond).toString().padStart(7)} decisions/s`)
    }
  }
  await client.quit()
  return figures
}

console.log(`@spillway/rate-limit bench — Node ${process.version}, ${ROUNDS} rounds × ${DURATION_S} s per target, ${CONNECTIONS} connections`)
const only = process.env.BENCH_ONLY // 'http' or 'store' to run one half
if (only !== 'store') {
  console.log('HTTP (hello world over loopback, server in a child process):')
  const http = await httpBench()
  const bareCpu = median(http.cpu.get('bare')!)
  console.log('\n| target | req/s (median) | vs bare (median of per-round ratios) | server CPU µs/request (median) | throughput bound by CPU, vs bare |')
  console.log('| --- | ---: | ---: | ---: | ---: |')
  for (const target of HTTP_TARGETS) {
    const cpu = median(http.cpu.get(target)!)
    console.log(`| ${target} | ${Math.round(median(http.perSecond.get(target)!))} | ${(median(http.ratio.get(target)!) * 100).toFixed(1)}% | ` +
      `${cpu.toFixed(1)} | ${((bareCpu / cpu) * 100).toFixed(1)}% |`)
  }
  const memoryRatio = median(http.ratio.get('ours-memory')!)
  const memoryCpuRatio = bareCpu / median(http.cpu.get('ours-memory')!)
  console.log(`\ntarget ours-memory ≥ 95% of bare: throughput ${(memoryRatio * 100).toFixed(1)}% (${memoryRatio >= 0.95 ? 'MET' : 'NOT MET'}), ` +
    `CPU-bound ${(memoryCpuRatio * 100).toFixed(1)}% (${memoryCpuRatio >= 0.95 ? 'MET' : 'NOT MET'})`)
}
if (only !== 'http') {
  console.log(`\nStore decisions/s (same ioredis client, ${IN_FLIGHT} in flight, 1000 keys):`)
  const store = await storeBench()
  const ours = median(store.ours)
  const flexible = median(store.flexible)
  console.log('\n| store | decisions/s (median) | vs RateLimiterRedis |')
  console.log('| --- | ---: | ---: |')
  console.log(`| RedisStore (ours, token bucket) | ${Math.round(ours)} | ${((ours / flexible) * 100).toFixed(1)}% |`)
  console.log(`| RateLimiterRedis (fixed window) | ${Math.round(flexible)} | 100.0% |`)
  console.log(`target RedisStore ≥ RateLimiterRedis: ${ours >= flexible ? 'MET' : 'NOT MET'} (${((ours / flexible) * 100).toFixed(1)}%)`)
}
