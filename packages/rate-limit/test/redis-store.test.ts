import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import Fastify from 'fastify'
import { redisTestOptions, REDIS_URL } from '../../../test/support/redis.js'
import { RedisStore } from '../src/redis-store.js'
import { spillwayRateLimit } from '../src/plugin.js'
import { newDecision, type BucketPolicy } from '../src/policy.js'

const opts = await redisTestOptions()
const bucket = (index: number, name: string, capacity: number, refillPerSecond: number): BucketPolicy => ({
  kind: 'bucket', name, capacity, refillPerSecond, index, storeId: name, windowSeconds: Math.ceil(capacity / refillPerSecond)
})

async function client(t: { teardown(fn: () => unknown): void }) {
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  return redis
}
const uniquePrefix = () => `test-rl-${randomBytes(6).toString('hex')}`

t.test('burst then exact refusal, with Retry-After from the Redis clock', opts, async (t) => {
  const redis = await client(t)
  const store = new RedisStore({ client: redis, prefix: uniquePrefix() })
  const p = [bucket(0, 'p', 3, 0.5)]
  const results = []
  for (let i = 0; i < 4; i++) {
    const [result] = (await store.take(p, '10.0.0.1', 1, newDecision(1))).results
    if (result !== undefined) results.push({ ...result })
  }
  t.same(results.map((r) => r.allowed), [true, true, true, false])
  t.same(results.map((r) => r.remaining), [2, 1, 0, 0])
  t.ok(results[3]!.retryAfterMs > 1900 && results[3]!.retryAfterMs <= 2000, `one token at 0.5/s ≈ 2000 ms, got ${results[3]!.retryAfterMs}`)
})

t.test('all policies in one script call: a refused request takes from none', opts, async (t) => {
  const redis = await client(t)
  const store = new RedisStore({ client: redis, prefix: uniquePrefix() })
  const policies = [bucket(0, 'burst', 5, 0.001), bucket(1, 'quota', 2, 0.001)]
  const d1 = await store.take(policies, 'k', 1, newDecision(2))
  const d2 = await store.take(policies, 'k', 1, newDecision(2))
  const d3 = await store.take(policies, 'k', 1, newDecision(2))
  t.same([d1.allowed, d2.allowed, d3.allowed], [true, true, false])
  t.same(d3.results.map((r) => [r.allowed, r.remaining]), [[true, 3], [false, 0]], 'burst kept 3 tokens')
  const [[, time], [, state]] = (await redis.multi().time().getBuffer(store.bucketKey(policies[0]!, 'k')).exec()) as [[null, [string, string]], [null, Buffer]]
  const nowMs = Number(time[0]) * 1000 + Number(time[1]) / 1000
  // GCRA state: full again at TAT; tokens = capacity − (TAT − now) × rate.
  const burstTokens = 5 - (state.readDoubleLE(0) - nowMs) * 0.001 / 1000
  t.ok(Math.abs(burstTokens - 3) < 0.01, `burst bucket holds ${burstTokens}`)
})

t.test('keys are hash-tagged per client (one Cluster slot) and expire when idle', opts, async (t) => {
  const redis = await client(t)
  const prefix = uniquePrefix()
  const store = new RedisStore({ client: redis, prefix })
  const policies = [bucket(0, 'burst', 10, 10), bucket(1, 'quota', 100, 1)]
  await store.take(policies, 'client-1', 1, newDecision(2))
  t.equal(store.bucketKey(policies[0]!, 'client-1'), `{${prefix}:client-1}:burst`)
  const [burstTtl, quotaTtl] = await Promise.all(policies.map((p) => redis.pttl(store.bucketKey(p, 'client-1'))))
  t.ok(burstTtl! > 0 && burstTtl! <= 101, `burst TTL ${burstTtl} ms ≈ time to refill one token at 10/s (100 ms)`)
  t.ok(quotaTtl! > 900 && quotaTtl! <= 1001, `quota TTL ${quotaTtl} ms ≈ one token at 1/s`)
  const slots = await Promise.all(policies.map((p) => redis.call('CLUSTER', 'KEYSLOT', store.bucketKey(p, 'client-1')).catch(() => null)))
  if (slots[0] !== null) t.equal(slots[0], slots[1], 'same slot')
})

t.test('recovers from NOSCRIPT by sending the script once', opts, async (t) => {
  const redis = await client(t)
  const store = new RedisStore({ client: redis, prefix: uniquePrefix() })
  const original = redis.evalsha.bind(redis)
  let noscripts = 0
  // Simulates a Redis that lost its script cache (restart, failover) without flushing the shared server's.
  ;(redis as unknown as { evalsha: unknown }).evalsha = async (...args: unknown[]) => {
    if (noscripts++ === 0) throw new Error('NOSCRIPT No matching script. Please use EVAL.')
    return await (original as (...a: unknown[]) => Promise<unknown>)(...args)
  }
  const d = await store.take([bucket(0, 'p', 1, 1)], 'k', 1, newDecision(1))
  t.equal(d.allowed, true)
  const d2 = await store.take([bucket(0, 'p', 1, 1)], 'k', 1, newDecision(1))
  t.equal(d2.allowed, false)
  t.equal(noscripts, 2, 'the second call went straight through EVALSHA')
})

t.test('other Redis errors propagate (the fallback decides what to do)', opts, async (t) => {
  const redis = await client(t)
  const store = new RedisStore({ client: redis, prefix: uniquePrefix() })
  ;(redis as unknown as { evalsha: unknown }).evalsha = async () => { throw new Error('READONLY') }
  await t.rejects(store.take([bucket(0, 'p', 1, 1)], 'k', 1, newDecision(1)), /READONLY/)
})

t.test('plugin with a Redis URL: headers from Redis, decorator reports redis, client closed on close', opts, async (t) => {
  const app = Fastify()
  await app.register(spillwayRateLimit, { redis: REDIS_URL, prefix: uniquePrefix(), capacity: 2, refillPerSecond: 1 })
  app.get('/', async () => 'ok')
  t.teardown(() => app.close())
  const first = await app.inject('/')
  t.equal(first.statusCode, 200)
  t.equal(first.headers['ratelimit'], '"default";r=1;t=1')
  await app.inject('/')
  const refused = await app.inject('/')
  t.equal(refused.statusCode, 429)
  t.equal(refused.headers['retry-after'], '1')
  t.equal(app.rateLimit.store, 'redis')
  const stats = app.rateLimit.stats()
  t.equal(stats.storeLatency.count, 3)
  t.ok(stats.storeLatency.p99 > 0)
})

t.test('a throwing onLimited on the Redis path is a 500, not a crash', opts, async (t) => {
  const app = Fastify()
  await app.register(spillwayRateLimit, {
    redis: REDIS_URL, prefix: uniquePrefix(), capacity: 1, refillPerSecond: 0.001,
    onLimited: () => { throw new Error('hook bug') }
  })
  app.get('/', async () => 'ok')
  t.teardown(() => app.close())
  t.equal((await app.inject('/')).statusCode, 200)
  t.equal((await app.inject('/')).statusCode, 500)
})
