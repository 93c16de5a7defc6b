/**
 * One benchmark target in its own process, so the load generator never shares its event loop:
 * a hello-world Fastify route, bare or behind a rate limiter whose limits are high enough that
 * nothing is refused (the figure is the cost of deciding), or behind the other Spillway plugins
 * with their defaults on a server that is not overloaded (`load-shedding`, `degradation`, and
 * `all-three` with the rate limiter). Prints `{"port":N}` once listening, and answers an IPC
 * `'cpu'` with its CPU time so far (µs).
 */
import Fastify from 'fastify'
import { spillwayRateLimit } from '../src/plugin.js'

export const TARGETS = [
  'bare', 'fastify-rate-limit', 'ours-memory', 'ours-redis', 'ours-memory-no-headers', 'noop-hook', 'two-headers',
  'load-shedding', 'degradation', 'all-three'
] as const
export type Target = (typeof TARGETS)[number]

const target = process.argv[2] as Target
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const app = Fastify({ logger: false })

if (target === 'fastify-rate-limit') {
  // Imported by a computed name: its type declarations merge `rateLimit` into Fastify's interfaces
  // as ours do, and the two cannot share one type-checked program.
  const specifier = '@fastify/rate-limit'
  const { default: fastifyRateLimit } = await import(specifier) as { default: Parameters<typeof app.register>[0] }
  await app.register(fastifyRateLimit, { max: 1e9, timeWindow: 60_000 })
} else if (target === 'ours-memory') {
  await app.register(spillwayRateLimit, { capacity: 1e9, refillPerSecond: 1e9 })
} else if (target === 'ours-memory-no-headers') {
  await app.register(spillwayRateLimit, { capacity: 1e9, refillPerSecond: 1e9, headers: false })
} else if (target === 'noop-hook') {
  // What any onRequest hook costs, for reading the figures above.
  app.addHook('onRequest', (_request, _reply, done) => done())
} else if (target === 'two-headers') {
  // What two header fields of the RateLimit size cost, without any limiting; names in lower case,
  // as ours writes them.
  app.addHook('onRequest', (_request, reply, done) => {
    reply.header('ratelimit-policy', '"default";q=1000000000;w=1')
    reply.header('ratelimit', '"default";r=999999999;t=1')
    done()
  })
} else if (target === 'ours-redis') {
  // A timeout the loaded loop cannot trip: this measures Redis decisions, not the fallback.
  await app.register(spillwayRateLimit, {
    capacity: 1e9, refillPerSecond: 1e9, redis: redisUrl, prefix: `bench-rl-${process.pid}`, storeTimeoutMs: 5000
  })
} else if (target === 'load-shedding' || target === 'degradation' || target === 'all-three') {
  // The siblings' sources, imported only by the targets that measure them, so that every other
  // target's process loads exactly what it did before. Registered as the shop API registers them.
  if (target === 'all-three') await app.register(spillwayRateLimit, { capacity: 1e9, refillPerSecond: 1e9 })
  if (target !== 'degradation') {
    const { loadShedding } = await import('../../load-shedding/src/index.js')
    // A server answering as fast as it can is overloaded by the shedder's own definition, and its
    // defaults act on it: the run queue's slices push the starting concurrency limit into
    // refusals, and without the queue the loop's utilization would. Neither setting changes what a
    // request goes through; the threshold stays open, as on a server with headroom.
    await app.register(loadShedding, { queue: false, maxUtilization: 1.01 })
  }
  if (target !== 'load-shedding') {
    const { degradation } = await import('../../degradation/src/index.js')
    await app.register(degradation, { features: [{ name: 'recommendations', offAtLevel: 1 }] })
  }
} else if (target !== 'bare') {
  throw new Error(`unknown target ${String(target)}`)
}
app.get('/', async () => 'hello world')
await app.listen({ port: 0, host: '127.0.0.1' })
const address = app.server.address()
process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address !== null ? address.port : 0 })}\n`)
process.on('SIGTERM', () => { void app.close().then(() => process.exit(0)) })
// CPU time is far less disturbed by the other jobs on a shared machine than throughput is.
process.on('message', (message) => {
  if (message === 'cpu') {
    const { user, system } = process.cpuUsage()
    process.send?.({ cpuMicros: user + system })
  }
})
process.channel?.unref()
