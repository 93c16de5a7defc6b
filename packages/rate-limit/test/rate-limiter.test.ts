/**
 * The decider alone: an injected clock, the memory store (or a store the test drives), no
 * framework. Decisions, header values, the refusal's context and body, route settings and what a
 * failed store means.
 */
import t from 'tap'
import diagnostics from 'node:diagnostics_channel'
import { RateLimiterMemory } from 'rate-limiter-flexible'
import { RateLimiter, QUOTA_EXCEEDED_TYPE, type HeaderWriter } from '../src/rate-limiter.js'
import { normalizeOptions } from '../src/options.js'
import { MemoryStore } from '../src/memory-store.js'
import { RateLimitStats } from '../src/stats.js'
import { RATE_LIMIT_CHANNEL, type RateLimitEvent } from '../src/events.js'
import type { BucketStore, Decision } from '../src/policy.js'

/** A hand-driven clock, ms. */
function clock(start = 0) {
  let now = start
  return { now: () => now, advance: (ms: number) => { now += ms } }
}

function limiterWith(options: Record<string, unknown>, store?: BucketStore) {
  const normalized = normalizeOptions<unknown, unknown>(options)
  const stats = new RateLimitStats(normalized.now)
  const memory = new MemoryStore({ maxKeys: normalized.maxKeys, ...(normalized.now === undefined ? {} : { now: normalized.now }) })
  return new RateLimiter(normalized, store ?? memory, stats)
}

/** Headers written into a plain object: the writer interface without a framework. */
const recorder: HeaderWriter<Record<string, string | number>> = {
  setHeader: (target, name, value) => { target[name] = value },
  getHeader: (target, name) => target[name]
}

function take(limiter: RateLimiter<unknown, unknown>, route: ReturnType<RateLimiter<unknown, unknown>['prepare']>, key = 'k', cost = 1): Decision {
  const decision = limiter.take(route, key, cost)
  if (decision instanceof Promise) throw new Error('the memory store decides synchronously')
  return decision
}

t.test('memory store: synchronous decisions, the burst then a refusal with the exact wait', async (t) => {
  const c = clock()
  const limiter = limiterWith({ capacity: 2, refillPerSecond: 0.5, now: c.now })
  t.equal(limiter.synchronous, true)
  const route = limiter.prepare('GET /', limiter.options)
  t.same([take(limiter, route).allowed, take(limiter, route).allowed], [true, true])
  const refused = take(limiter, route)
  t.same({ allowed: refused.allowed, retryAfterMs: refused.retryAfterMs, source: refused.source }, { allowed: false, retryAfterMs: 2000, source: 'store' })
  t.equal(take(limiter, route), route.scratch, 'the memory path reuses the route\'s decision object: nothing allocated')
  c.advance(2000)
  t.equal(take(limiter, route).allowed, true, 'one token 2000 ms later')
  t.equal(take(limiter, route, 'other').allowed, true, 'another key has its own bucket')
})

t.test('header values: policy, remaining and reset; t = Retry-After for a refusing policy; legacy and CORS', async (t) => {
  const c = clock()
  const limiter = limiterWith({
    legacyHeaders: true, exposeHeaders: true, now: c.now,
    policies: [{ name: 'burst', capacity: 2, refillPerSecond: 2 }, { name: 'quota', capacity: 5, refillPerSecond: 5 / 3600 }]
  })
  const route = limiter.prepare('GET /', limiter.options)
  const first: Record<string, string | number> = { 'access-control-expose-headers': 'ETag' }
  limiter.writeHeaders(first, recorder, route, take(limiter, route))
  t.same(first, {
    'access-control-expose-headers': 'ETag, RateLimit-Policy, RateLimit, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset',
    'ratelimit-policy': '"burst";q=2;w=1, "quota";q=5;w=3600',
    ratelimit: '"burst";r=1;t=1, "quota";r=4;t=720',
    'x-ratelimit-limit': 2,
    'x-ratelimit-remaining': 1,
    'x-ratelimit-reset': 1
  })
  take(limiter, route)
  const refused: Record<string, string | number> = {}
  limiter.writeHeaders(refused, recorder, route, take(limiter, route))
  t.equal(refused['ratelimit'], '"burst";r=0;t=1, "quota";r=3;t=1440', 'the refusing burst reports t = Retry-After; the quota was not charged')
})

t.test('no figures for a decision taken without a store, and none at all with headers: false', async (t) => {
  const limiter = limiterWith({ onStoreError: 'closed', probeIntervalMs: 3000 })
  const route = limiter.prepare('GET /', limiter.options)
  const failed = limiter.storeFailed(route)
  const written: Record<string, string | number> = {}
  limiter.writeHeaders(written, recorder, route, failed)
  t.same(written, {})
  const quiet = limiterWith({ headers: false, now: clock().now })
  const quietRoute = quiet.prepare('*', quiet.options)
  const none: Record<string, string | number> = {}
  quiet.writeHeaders(none, recorder, quietRoute, take(quiet, quietRoute))
  t.same(none, {})
})

t.test('refused(): counts, names the violated policies, publishes, and the problem body', async (t) => {
  const events: RateLimitEvent[] = []
  const listener = (message: unknown) => { events.push(message as RateLimitEvent) }
  diagnostics.subscribe(RATE_LIMIT_CHANNEL, listener)
  t.teardown(() => diagnostics.unsubscribe(RATE_LIMIT_CHANNEL, listener))
  const limiter = limiterWith({
    now: clock().now, policies: [{ name: 'burst', capacity: 5, refillPerSecond: 1 }, { name: 'quota', capacity: 1, refillPerSecond: 0.01 }]
  })
  const route = limiter.prepare('POST /login', limiter.options)
  take(limiter, route, 'ann')
  const decision = take(limiter, route, 'ann')
  const context = limiter.refused(route, 'ann', decision, 100)
  t.same(context, { key: 'ann', route: 'POST /login', retryAfterMs: 100_000, retryAfterSeconds: 100, violatedPolicies: ['quota'], decision })
  t.match(events, [{ type: 'limited', key: 'ann', route: 'POST /login', violatedPolicies: ['quota'], retryAfterMs: 100_000 }])
  t.same(limiter.problem(context), {
    type: QUOTA_EXCEEDED_TYPE, title: 'Too Many Requests', status: 429,
    detail: 'Rate limit exceeded; retry in 100 s.', 'violated-policies': ['quota']
  })
  limiter.admitted()
  t.same([limiter.stats.allowed, limiter.stats.limited], [1, 1], 'the limiter counts what the protocol tells it')
})

t.test('route settings: shared buckets unless the route sets limits, which get their own memory slots', async (t) => {
  const limiter = limiterWith({ capacity: 2, refillPerSecond: 1, now: clock().now })
  t.equal(limiter.routeSettings(undefined, 'GET /a'), limiter.options, 'no config: the limiter\'s own settings')
  t.equal(limiter.routeSettings(true, 'GET /a'), limiter.options)
  const costly = limiter.routeSettings({ cost: 2 }, 'GET /costly')
  t.equal(costly.buckets, limiter.options.buckets, 'only the cost changes: the same buckets')
  const login = limiter.routeSettings({ capacity: 1 }, 'POST /login')
  const search = limiter.routeSettings({ refillPerSecond: 5 }, 'GET /search')
  t.same(login.buckets.map((b) => [b.index, b.capacity, b.refillPerSecond, b.storeId]), [[1, 1, 1, 'POST%20%2Flogin%23default']])
  t.same(search.buckets.map((b) => [b.index, b.capacity, b.refillPerSecond]), [[2, 2, 5]], 'the next slot; the limiter\'s capacity kept')
  t.ok(Object.isFrozen(login) && Object.isFrozen(login.buckets) && Object.isFrozen(limiter.options), 'settings are frozen once normalized')
  const shared = limiter.prepare('GET /', limiter.options)
  const own = limiter.prepare('POST /login', login)
  take(limiter, shared)
  t.equal(take(limiter, own).allowed, true, 'a route with its own limits draws from its own bucket')
  t.equal(take(limiter, own).allowed, false)
  t.equal(take(limiter, shared).allowed, true, 'the limiter\'s bucket is untouched by the route\'s')
  t.ok(Object.isFrozen(own))
})

t.test('flexible policies: consumed first, given back when a bucket refuses', async (t) => {
  const daily = new RateLimiterMemory({ points: 3, duration: 86400 })
  const limiter = limiterWith({ now: () => 0, policies: [{ name: 'burst', capacity: 1, refillPerSecond: 0.001 }, { name: 'daily', limiter: daily }] })
  const route = limiter.prepare('GET /', limiter.options)
  const first = await limiter.take(route, 'k', 1)
  t.same(first.results.map((r) => [r.allowed, r.remaining]), [[true, 0], [true, 2]])
  const second = await limiter.take(route, 'k', 1)
  t.same([second.allowed, second.results[0]?.allowed, second.results[1]?.allowed], [false, false, true])
  t.equal((await daily.get('k'))?.consumedPoints, 1, 'the bucket refused: the daily point was given back')
})

t.test('a flexible store that fails rejects the take; storeFailed() decides as the fallback does', async (t) => {
  const broken = { points: 5, duration: 60, consume: async () => { throw new Error('ECONNREFUSED') }, reward: async () => ({}) }
  for (const [mode, allowed, source, retryAfterMs] of [
    ['open', true, 'open', 0], ['local', true, 'open', 0], ['closed', false, 'closed', 2000]
  ] as const) {
    const limiter = limiterWith({ onStoreError: mode, probeIntervalMs: 2000, policies: [{ name: 'pg', limiter: broken }] })
    const route = limiter.prepare('GET /', limiter.options)
    await t.rejects(Promise.resolve(limiter.take(route, 'k', 1)), { message: 'ECONNREFUSED' }, `${mode}: rejects, for the protocol to decide`)
    const decision = limiter.storeFailed(route)
    t.same({ allowed: decision.allowed, source: decision.source, retryAfterMs: decision.retryAfterMs }, { allowed, source, retryAfterMs }, mode)
    t.equal(decision.results.length, 1)
    t.same([limiter.stats.storeErrors, limiter.stats.fallbackDecisions], [1, 1], `${mode}: a store error and a fallback decision`)
  }
})

t.test('any store: the decision is the store\'s, and close() closes it', async (t) => {
  let closed = false
  const store: BucketStore = {
    take: async (_policies, _key, _cost, out) => { out.allowed = false; out.retryAfterMs = 1500; out.source = 'store'; return out },
    close: async () => { closed = true }
  }
  const limiter = limiterWith({ capacity: 3 }, store)
  t.equal(limiter.synchronous, false)
  const route = limiter.prepare('GET /', limiter.options)
  const pending = limiter.take(route, 'k', 1)
  t.ok(pending instanceof Promise)
  const decision = await pending
  t.not(decision, route.scratch, 'a remote decision gets its own object: replies may overlap')
  t.same([decision.allowed, decision.retryAfterMs], [false, 1500])
  await limiter.close()
  t.equal(closed, true)
})
