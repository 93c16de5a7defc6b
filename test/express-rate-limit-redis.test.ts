/**
 * @spillway/express's rateLimit against a real Redis over real HTTP, through ioredis clients the
 * application passes in: a fleet sharing one bucket, and a Redis that goes away and comes back.
 */
import { randomBytes } from 'node:crypto'
import { express } from '../packages/express/test/helpers/express.js'
import t, { type Test } from 'tap'
import { redisTestOptions, REDIS_URL } from './support/redis.js'
import { Redis, freePort, startRedisServer, stopRedisServer } from '../packages/degradation/test/support/redis-server.js'
import { rateLimit, type ExpressRateLimitOptions, type RateLimitMiddleware } from '../packages/express/src/rate-limit.js'
import { serve } from '../packages/express/test/helpers/serve.js'

const opts = await redisTestOptions()
const prefix = () => `test-express-rl-${randomBytes(6).toString('hex')}`
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const silent = { warn: () => {}, info: () => {} }

function client(t: Test, url: string): Redis {
  // Without the offline queue a command fails at once while Redis is down (the fallback takes over)
  // instead of waiting in ioredis for storeTimeoutMs.
  const redis = new Redis(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: false })
  redis.on('error', () => {})
  t.teardown(() => { redis.disconnect() })
  return redis
}

async function ready(redis: Redis): Promise<void> {
  if (redis.status !== 'ready') await new Promise((resolve) => redis.once('ready', resolve))
}

async function startApp(t: Test, options: ExpressRateLimitOptions): Promise<{ limit: RateLimitMiddleware, url: string }> {
  const app = express()
  const limit = rateLimit({ logger: silent, ...options })
  t.teardown(() => limit.close())
  app.use(limit)
  app.get('/', (_req, res) => { res.send('ok') })
  return { limit, url: await serve(t, app) }
}

async function burst(urls: string[], count: number): Promise<number[]> {
  return await Promise.all(Array.from({ length: count }, async (_, i) => {
    const response = await fetch(urls[i % urls.length] as string)
    await response.arrayBuffer()
    return response.status
  }))
}

t.test('two Express instances on one Redis admit together no more than one bucket allows', opts, async (t) => {
  const keyPrefix = prefix()
  const shared = { prefix: keyPrefix, capacity: 50, refillPerSecond: 0.001, key: () => 'one-client', storeTimeoutMs: 5000 }
  const redisA = client(t, REDIS_URL)
  const redisB = client(t, REDIS_URL)
  await Promise.all([ready(redisA), ready(redisB)])
  const a = await startApp(t, { ...shared, redis: redisA })
  const b = await startApp(t, { ...shared, redis: redisB })
  t.equal(a.limit.store, 'redis')
  const statuses = await burst([a.url, b.url], 300)
  t.equal(statuses.filter((s) => s === 200).length, 50, 'exactly the capacity, across both instances')
  t.equal(statuses.filter((s) => s === 429).length, 250)
  t.equal(a.limit.stats().storeErrors + b.limit.stats().storeErrors, 0)
  t.ok(a.limit.stats().allowed > 0 && b.limit.stats().allowed > 0, 'both instances admitted some')
  t.equal(redisA.status, 'ready', 'close() leaves the application\'s client alone')
  const keys = await redisA.keys(`{${keyPrefix}:*`)
  t.same(keys, [`{${keyPrefix}:one-client}:default`], 'one bucket, under the prefix')
  await redisA.del(...keys)
})

t.test('Redis stopped mid-test: no 5xx, local fallback, then back to Redis when it restarts', opts, async (t) => {
  const port = await freePort()
  await startRedisServer(port)
  t.teardown(() => stopRedisServer(port))
  const redis = client(t, `redis://127.0.0.1:${port}`)
  await ready(redis)
  const { limit, url } = await startApp(t, {
    redis, prefix: prefix(), capacity: 1000, refillPerSecond: 1000, storeTimeoutMs: 50, probeIntervalMs: 200, instances: 2
  })
  t.same(new Set(await burst([url], 20)), new Set([200]))
  t.equal(limit.degraded, false)

  await stopRedisServer(port)
  const during: number[] = []
  for (let i = 0; i < 10; i++) {
    during.push(...await burst([url], 10))
    await sleep(50)
  }
  t.same(new Set(during), new Set([200]), 'Redis down: still served, no 5xx')
  t.equal(limit.degraded, true)
  t.ok(limit.stats().fallbackDecisions > 0)
  t.equal(limit.stats().degradations, 1, 'one transition, however many requests')
  const headers = (await fetch(url)).headers
  t.match(headers.get('ratelimit'), /^"default";r=\d+;t=\d+$/, 'the local bucket still reports figures')

  await startRedisServer(port)
  const after: number[] = []
  for (let i = 0; i < 60 && limit.degraded; i++) {
    after.push(...await burst([url], 5))
    await sleep(100)
  }
  t.equal(limit.degraded, false, 'back on Redis by itself')
  t.notOk(after.some((s) => s >= 500), 'no 5xx while it reconnected')
  t.equal(limit.stats().recoveries, 1)
})

t.test('Redis unreachable from the start (a URL): the local bucket refuses past this instance\'s share', opts, async (t) => {
  const port = await freePort()
  const { limit, url } = await startApp(t, {
    redis: `redis://127.0.0.1:${port}`, prefix: prefix(), capacity: 10, refillPerSecond: 0.001, instances: 2,
    storeTimeoutMs: 50, key: () => 'k'
  })
  await limit.ready
  const statuses = await burst([url], 12)
  t.equal(statuses.filter((s) => s === 200).length, 5, 'capacity 10 over 2 instances: 5 here')
  t.equal(statuses.filter((s) => s === 429).length, 7)
  t.notOk(statuses.some((s) => s >= 500))
  t.equal(limit.degraded, true)
})
