/**
 * @spillway/rate-limit against a real Redis over real HTTP: a fleet sharing one bucket, a Redis
 * that goes away and comes back, and instances whose clocks disagree.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { redisTestOptions, REDIS_URL } from './support/redis.js'
import {
  Redis, burst, closeAgent, freePort, get, startApp, startRedisServer, stopRedisServer
} from '../packages/rate-limit/test/support/fleet.js'

const opts = await redisTestOptions()
const prefix = () => `test-rl-int-${randomBytes(6).toString('hex')}`
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
t.teardown(closeAgent)

t.test('two instances on one Redis admit together no more than one bucket allows', opts, async (t) => {
  // A generous timeout: this test is about sharing, not fallback (a timed-out decision is local by design).
  const shared = { redis: REDIS_URL, prefix: prefix(), capacity: 50, refillPerSecond: 0.001, key: () => 'one-client', storeTimeoutMs: 5000 }
  const a = await startApp(t, shared)
  const b = await startApp(t, shared)
  const statuses = await burst([a.url, b.url], 300)
  const admitted = statuses.filter((s) => s === 200).length
  t.equal(admitted, 50, 'exactly the capacity, across both instances')
  t.equal(statuses.filter((s) => s === 429).length, 250)
  t.equal(a.app.rateLimit.stats().storeErrors + b.app.rateLimit.stats().storeErrors, 0)
  t.ok(a.app.rateLimit.stats().allowed > 0 && b.app.rateLimit.stats().allowed > 0, 'both instances admitted some')
})

t.test('instances with clocks hours apart agree, because the clock is Redis TIME', opts, async (t) => {
  const keyPrefix = prefix()
  const base = { redis: REDIS_URL, prefix: keyPrefix, capacity: 5, refillPerSecond: 10, key: () => 'skewed', storeTimeoutMs: 5000 }
  // `now` is the plugin's only local clock; Redis decisions must not read it.
  const ahead = await startApp(t, { ...base, now: () => performance.now() + 3_600_000 })
  const behind = await startApp(t, { ...base, now: () => performance.now() - 3_600_000 })
  const drained = await burst([ahead.url, behind.url], 10)
  t.equal(drained.filter((s) => s === 200).length, 5)
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.quit())
  const [seconds, micros] = (await redis.time()) as unknown as [string, string]
  const redisNowMs = Number(seconds) * 1000 + Number(micros) / 1000
  const state = await redis.getBuffer(`{${keyPrefix}:skewed}:default`)
  // The bucket's only state is when it will be full again, on Redis's clock: 5 tokens at 10/s ≈ now + 500 ms.
  const fullAt = state?.readDoubleLE(0) ?? NaN
  t.ok(Math.abs(fullAt - redisNowMs) < 5_000, `bucket full again ${Math.round(fullAt - redisNowMs)} ms from Redis TIME`)
  await sleep(300)
  // 300 ms at 10/s is 3 tokens: whichever instance asks, with whatever clock.
  const afterWait = await burst([behind.url, ahead.url], 6)
  const admitted = afterWait.filter((s) => s === 200).length
  t.ok(admitted >= 3 && admitted <= 4, `admitted ${admitted} after 300 ms (3 earned, a 4th if the burst took > 100 ms)`)
})

t.test('Redis stopped mid-test: no 5xx, local fallback, then back to Redis when it restarts', opts, async (t) => {
  const port = await freePort()
  await startRedisServer(port)
  t.teardown(() => stopRedisServer(port))
  const { app, url } = await startApp(t, {
    redis: `redis://127.0.0.1:${port}`, prefix: prefix(), capacity: 1000, refillPerSecond: 1000,
    storeTimeoutMs: 50, probeIntervalMs: 200, instances: 2
  })
  const before = await burst([url], 20)
  t.same(new Set(before), new Set([200]))
  t.equal(app.rateLimit.degraded, false)

  await stopRedisServer(port)
  const during: number[] = []
  for (let i = 0; i < 10; i++) {
    during.push(...await burst([url], 10))
    await sleep(50)
  }
  t.same(new Set(during), new Set([200]), 'Redis down: still served, no 5xx')
  t.equal(app.rateLimit.degraded, true)
  const degradedStats = app.rateLimit.stats()
  t.ok(degradedStats.fallbackDecisions > 0)
  t.equal(degradedStats.degradations, 1, 'one transition, however many requests')
  const rateLimit = (await get(url)).headers['ratelimit']
  t.match(String(rateLimit), /^"default";r=\d+;t=\d+$/, 'the local bucket still reports figures')

  await startRedisServer(port)
  const after: number[] = []
  for (let i = 0; i < 60 && app.rateLimit.degraded; i++) {
    after.push(...await burst([url], 5))
    await sleep(100)
  }
  t.equal(app.rateLimit.degraded, false, 'back on Redis by itself')
  t.same(new Set(after), new Set([200]), 'no 5xx while it reconnected')
  t.equal(app.rateLimit.stats().recoveries, 1)
  const statuses = await burst([url], 10)
  t.same(new Set(statuses), new Set([200]))
})

t.test('Redis unreachable from the start: served from the local bucket, refusing past this instance share', opts, async (t) => {
  const port = await freePort()
  const { app, url } = await startApp(t, {
    redis: `redis://127.0.0.1:${port}`, prefix: prefix(), capacity: 10, refillPerSecond: 0.001, instances: 2,
    storeTimeoutMs: 50, key: () => 'k'
  })
  const statuses = await burst([url], 12)
  t.equal(statuses.filter((s) => s === 200).length, 5, 'capacity 10 over 2 instances: 5 here')
  t.equal(statuses.filter((s) => s === 429).length, 7)
  t.notOk(statuses.some((s) => s >= 500))
  t.equal(app.rateLimit.degraded, true)
})
