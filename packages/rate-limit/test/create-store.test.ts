import t from 'tap'
import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { redisTestOptions, REDIS_URL } from '../../../test/support/redis.js'
import { freePort } from '../../../test/support/redis-server.js'
import { createRateLimiter, createStore } from '../src/create-store.js'
import { normalizeOptions } from '../src/options.js'
import { MemoryStore } from '../src/memory-store.js'
import { StoreFallback } from '../src/store-fallback.js'
import { RateLimitStats } from '../src/stats.js'
import { newDecision } from '../src/policy.js'

const opts = await redisTestOptions()
const silent = { warn: () => {}, info: () => {} }
const options = (input: Record<string, unknown>) => normalizeOptions<unknown, unknown>(input)

t.test('no redis: the memory store, sized and clocked by the options, ready at once', async (t) => {
  const { store, ready } = createStore(options({ maxKeys: 50, now: () => 0 }), new RateLimitStats(), silent)
  t.ok(store instanceof MemoryStore)
  t.equal((store as MemoryStore).maxKeys, 50)
  await ready
  const { limiter } = createRateLimiter(options({}), silent)
  t.equal(limiter.synchronous, true)
})

t.test('an ioredis client: Redis behind the fallback, and close() leaves the client alone', opts, async (t) => {
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  const prefix = `test-rl-create-${randomBytes(6).toString('hex')}`
  const { limiter, ready } = createRateLimiter(options({ redis, prefix, capacity: 2 }), silent)
  await ready
  t.ok(limiter.store instanceof StoreFallback)
  t.equal(limiter.synchronous, false)
  const decision = await limiter.store.take(limiter.options.buckets, 'k', 1, newDecision(1))
  t.same([decision.allowed, decision.source, decision.results[0]?.remaining], [true, 'store', 1])
  t.same(await redis.keys(`{${prefix}:*`), [`{${prefix}:k}:default`])
  await limiter.close()
  t.equal(redis.status, 'ready')
})

t.test('a URL: the limiter owns the client, waits for it, and quits it on close', opts, async (t) => {
  const { limiter, ready } = createRateLimiter(options({ redis: REDIS_URL, prefix: `test-rl-create-${randomBytes(6).toString('hex')}` }), silent)
  await ready
  const decision = await limiter.store.take(limiter.options.buckets, 'k', 1, newDecision(1))
  t.equal(decision.source, 'store', 'connected before the first decision')
  await limiter.close()
})

t.test('a URL nobody answers: ready settles after the wait, with one warning; decisions fall back', async (t) => {
  const warnings: string[] = []
  const port = await freePort()
  const { limiter, ready } = createRateLimiter(options({ redis: `redis://127.0.0.1:${port}`, storeTimeoutMs: 50 }), {
    warn: (_payload, message) => { warnings.push(message) }, info: () => {}
  })
  t.teardown(() => limiter.close())
  const started = performance.now()
  await ready
  t.ok(performance.now() - started >= 1900, 'waited for the connection')
  t.same(warnings, ['rate-limit Redis not ready at startup: the fallback decides until it is'])
  const decision = await limiter.store.take(limiter.options.buckets, 'k', 1, newDecision(1))
  t.equal(decision.source, 'local')
})
