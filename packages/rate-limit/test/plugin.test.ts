import t from 'tap'
import diagnostics from 'node:diagnostics_channel'
import Fastify, { type FastifyInstance } from 'fastify'
import { spillwayRateLimit, QUOTA_EXCEEDED_TYPE } from '../src/index.js'
import { RATE_LIMIT_CHANNEL, type RateLimitEvent } from '../src/events.js'
import type { RateLimitOptions } from '../src/plugin.js'

/** A hand-driven clock, ms. */
function clock(start = 0) {
  let now = start
  return { now: () => now, advance: (ms: number) => { now += ms } }
}

async function build(t: Test, options: RateLimitOptions, routes?: (app: FastifyInstance) => void): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(spillwayRateLimit, options)
  if (routes === undefined) app.get('/', async () => 'ok')
  else routes(app)
  t.teardown(() => app.close())
  await app.ready()
  return app
}
interface Test { teardown(fn: () => unknown): void }

t.test('admits the burst, then 429 with problem+json, Retry-After and the draft headers', async (t) => {
  const c = clock()
  const app = await build(t, { capacity: 3, refillPerSecond: 1, now: c.now })
  for (let i = 0; i < 3; i++) {
    const res = await app.inject('/')
    t.equal(res.statusCode, 200)
    t.equal(res.headers['ratelimit-policy'], '"default";q=3;w=3')
    t.equal(res.headers['ratelimit'], `"default";r=${2 - i};t=${i + 1}`)
  }
  const refused = await app.inject('/')
  t.equal(refused.statusCode, 429)
  t.equal(refused.headers['retry-after'], '1')
  t.equal(refused.headers['ratelimit'], '"default";r=0;t=1', 't equals Retry-After on a refusal')
  t.match(refused.headers['content-type'], /^application\/problem\+json/)
  t.same(refused.json(), {
    type: QUOTA_EXCEEDED_TYPE,
    title: 'Too Many Requests',
    status: 429,
    detail: 'Rate limit exceeded; retry in 1 s.',
    'violated-policies': ['default']
  })
  c.advance(999)
  t.equal((await app.inject('/')).statusCode, 429, 'a token is 1000 ms away, not 999')
  c.advance(1)
  t.equal((await app.inject('/')).statusCode, 200)
  t.same(app.rateLimit.stats().allowed, 4)
  t.same(app.rateLimit.stats().limited, 2)
  t.equal(app.rateLimit.store, 'memory')
  t.equal(app.rateLimit.degraded, false)
})

t.test('Retry-After is whole seconds rounded up: 0.4 tokens/s missing one token is 3 s', async (t) => {
  const c = clock()
  const app = await build(t, { capacity: 1, refillPerSecond: 0.4, now: c.now })
  await app.inject('/')
  const refused = await app.inject('/')
  t.equal(refused.headers['retry-after'], '3', '2500 ms rounds up to 3 s')
  t.equal(refused.headers['ratelimit-policy'], '"default";q=1;w=3')
})

t.test('each client IP has its own bucket', async (t) => {
  const app = await build(t, { capacity: 1, refillPerSecond: 1, now: clock().now })
  t.equal((await app.inject({ url: '/', remoteAddress: '10.0.0.1' })).statusCode, 200)
  t.equal((await app.inject({ url: '/', remoteAddress: '10.0.0.1' })).statusCode, 429)
  t.equal((await app.inject({ url: '/', remoteAddress: '10.0.0.2' })).statusCode, 200)
})

t.test('several policies: passes only if all have tokens, and a refusal takes from none', async (t) => {
  const c = clock()
  const app = await build(t, {
    policies: [{ name: 'burst', capacity: 2, refillPerSecond: 2 }, { name: 'quota', capacity: 5, refillPerSecond: 5 / 3600 }],
    now: c.now
  })
  const first = await app.inject('/')
  t.equal(first.headers['ratelimit-policy'], '"burst";q=2;w=1, "quota";q=5;w=3600')
  t.equal(first.headers['ratelimit'], '"burst";r=1;t=1, "quota";r=4;t=720')
  await app.inject('/')
  const burstRefused = await app.inject('/')
  t.equal(burstRefused.statusCode, 429)
  t.same(burstRefused.json()['violated-policies'], ['burst'])
  t.match(burstRefused.headers['ratelimit'], /"quota";r=3;/, 'the quota was not charged for the refused request')
  c.advance(1000)
  t.equal((await app.inject('/')).statusCode, 200)
  t.equal((await app.inject('/')).statusCode, 200)
  c.advance(1000)
  t.equal((await app.inject('/')).statusCode, 200, 'the fifth and last of the quota')
  const quotaRefused = await app.inject('/')
  t.equal(quotaRefused.statusCode, 429)
  t.same(quotaRefused.json()['violated-policies'], ['quota'])
  t.match(quotaRefused.headers['ratelimit'], /^"burst";r=1;t=1, "quota";r=0;t=718$/, 'the burst bucket was not charged either')
  t.equal(quotaRefused.headers['retry-after'], '718', '(1 − 2 s × 5/3600) × 720 s ≈ 718 s')
})

t.test('cost as a number and as a function of the request', async (t) => {
  const c = clock()
  const app = await build(t, { capacity: 10, refillPerSecond: 1, now: c.now }, (app) => {
    app.get('/cheap', async () => 'ok')
    app.get('/heavy', { config: { rateLimit: { cost: 4 } } }, async () => 'ok')
    app.post('/upload', { config: { rateLimit: { cost: (request) => Number(request.headers['x-units'] ?? 1) } } }, async () => 'ok')
  })
  t.match((await app.inject('/heavy')).headers['ratelimit'], /r=6;/)
  t.match((await app.inject('/heavy')).headers['ratelimit'], /r=2;/)
  t.equal((await app.inject('/heavy')).statusCode, 429, 'needs 4, has 2')
  t.equal((await app.inject({ method: 'POST', url: '/upload', headers: { 'x-units': '2' } })).statusCode, 200, 'shares the bucket')
  t.equal((await app.inject('/cheap')).statusCode, 429)
  const bad = await app.inject({ method: 'POST', url: '/upload', headers: { 'x-units': 'lots' } })
  t.equal(bad.statusCode, 500)
  t.equal(bad.json().code, 'SPILLWAY_RATE_LIMIT_COST')
})

t.test('per-route override gets its own bucket; rateLimit: false opts out', async (t) => {
  const c = clock()
  const app = await build(t, { capacity: 2, refillPerSecond: 1, now: c.now }, (app) => {
    app.get('/a', async () => 'ok')
    app.get('/login', { config: { rateLimit: { capacity: 1, refillPerSecond: 1 / 60 } } }, async () => 'ok')
    app.get('/health', { config: { rateLimit: false } }, async () => 'ok')
  })
  t.equal((await app.inject('/login')).headers['ratelimit-policy'], '"default";q=1;w=60')
  const refused = await app.inject('/login')
  t.equal(refused.statusCode, 429)
  t.equal(refused.headers['retry-after'], '60')
  t.equal((await app.inject('/a')).statusCode, 200, 'the global bucket is untouched by /login')
  t.equal((await app.inject('/a')).statusCode, 200)
  t.equal((await app.inject('/a')).statusCode, 429)
  for (let i = 0; i < 5; i++) {
    const health = await app.inject('/health')
    t.equal(health.statusCode, 200)
    t.notOk(health.headers['ratelimit'], 'no headers on an unlimited route')
  }
})

t.test('HEAD draws from the same bucket as GET, also on a route with its own limits', async (t) => {
  const app = await build(t, { capacity: 4, refillPerSecond: 0.001, now: clock().now }, (app) => {
    app.get('/', async () => 'ok')
    app.get('/login', { config: { rateLimit: { capacity: 2, refillPerSecond: 0.001 } } }, async () => 'ok')
  })
  t.match((await app.inject({ method: 'HEAD', url: '/' })).headers['ratelimit'], /r=3;/)
  t.match((await app.inject('/')).headers['ratelimit'], /r=2;/, 'counted once per request, HEAD included')
  t.equal((await app.inject({ method: 'HEAD', url: '/login' })).statusCode, 200)
  t.equal((await app.inject('/login')).statusCode, 200)
  t.equal((await app.inject({ method: 'HEAD', url: '/login' })).statusCode, 429, 'HEAD does not double the budget')
})

t.test('a route overriding only capacity keeps the plugin refill rate', async (t) => {
  const app = await build(t, { capacity: 10, refillPerSecond: 2, now: clock().now }, (app) => {
    app.get('/r', { config: { rateLimit: { capacity: 4 } } }, async () => 'ok')
  })
  t.equal((await app.inject('/r')).headers['ratelimit-policy'], '"default";q=4;w=2')
})

t.test('global: false limits only routes that ask', async (t) => {
  const app = await build(t, { global: false, capacity: 1, refillPerSecond: 1, now: clock().now }, (app) => {
    app.get('/free', async () => 'ok')
    app.get('/limited', { config: { rateLimit: true } }, async () => 'ok')
    app.get('/custom', { config: { rateLimit: { capacity: 2 } } }, async () => 'ok')
  })
  t.equal((await app.inject('/free')).statusCode, 200)
  t.equal((await app.inject('/free')).statusCode, 200)
  t.equal((await app.inject('/limited')).statusCode, 200)
  t.equal((await app.inject('/limited')).statusCode, 429)
  t.equal((await app.inject('/custom')).statusCode, 200)
  t.equal((await app.inject('/custom')).statusCode, 200)
  t.equal((await app.inject('/custom')).statusCode, 429)
})

t.test('key function, allow list and errorResponseBuilder/onLimited', async (t) => {
  const limited: string[] = []
  const app = await build(t, {
    capacity: 1,
    refillPerSecond: 1,
    now: clock().now,
    key: (request) => String(request.headers['x-api-key'] ?? request.ip),
    allowList: ['internal'],
    onLimited: (request, reply, context) => {
      limited.push(`${context.key} ${context.route} ${context.violatedPolicies.join()}`)
      reply.header('x-limited', 'yes')
    },
    errorResponseBuilder: (_request, context) => ({ error: 'slow down', retryIn: context.retryAfterSeconds })
  })
  t.equal((await app.inject({ url: '/', headers: { 'x-api-key': 'k1' } })).statusCode, 200)
  const refused = await app.inject({ url: '/', headers: { 'x-api-key': 'k1' } })
  t.equal(refused.statusCode, 429)
  t.equal(refused.headers['x-limited'], 'yes')
  t.equal(refused.headers['retry-after'], '1')
  t.same(refused.json(), { error: 'slow down', retryIn: 1 })
  t.equal((await app.inject({ url: '/', headers: { 'x-api-key': 'k2' } })).statusCode, 200)
  for (let i = 0; i < 3; i++) {
    const res = await app.inject({ url: '/', headers: { 'x-api-key': 'internal' } })
    t.equal(res.statusCode, 200)
    t.notOk(res.headers['ratelimit'], 'allow-listed requests are not counted')
  }
  t.same(limited, ['k1 GET / default'])
})

t.test('headers: off, legacy X-RateLimit-*, and CORS exposure', async (t) => {
  const off = await build(t, { headers: false, capacity: 1, refillPerSecond: 1, now: clock().now })
  await off.inject('/')
  const refused = await off.inject('/')
  t.notOk(refused.headers['ratelimit'])
  t.equal(refused.headers['retry-after'], '1', 'Retry-After stays on every 429')

  const legacy = await build(t, {
    legacyHeaders: true,
    exposeHeaders: true,
    policies: [{ name: 'burst', capacity: 5, refillPerSecond: 5 }, { name: 'quota', capacity: 3, refillPerSecond: 1 / 60 }],
    now: clock().now
  })
  const res = await legacy.inject('/')
  t.equal(res.headers['x-ratelimit-limit'], '3', 'the policy with fewest tokens left')
  t.equal(res.headers['x-ratelimit-remaining'], '2')
  t.equal(res.headers['x-ratelimit-reset'], '60')
  t.equal(res.headers['access-control-expose-headers'],
    'RateLimit-Policy, RateLimit, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset')
})

t.test('preHandler hook sees what auth hooks put on the request', async (t) => {
  const app = Fastify()
  app.decorateRequest('user', '')
  app.addHook('onRequest', async (request) => { (request as unknown as { user: string }).user = String(request.headers['x-user']) })
  await app.register(spillwayRateLimit, {
    hook: 'preHandler', capacity: 1, refillPerSecond: 1, now: clock().now,
    key: (request) => (request as unknown as { user: string }).user
  })
  app.get('/', async () => 'ok')
  t.teardown(() => app.close())
  t.equal((await app.inject({ url: '/', headers: { 'x-user': 'ann' } })).statusCode, 200)
  t.equal((await app.inject({ url: '/', headers: { 'x-user': 'ann' } })).statusCode, 429)
  t.equal((await app.inject({ url: '/', headers: { 'x-user': 'bob' } })).statusCode, 200)
})

t.test('publishes limited events on diagnostics_channel', async (t) => {
  const events: RateLimitEvent[] = []
  const listener = (message: unknown) => { events.push(message as RateLimitEvent) }
  diagnostics.subscribe(RATE_LIMIT_CHANNEL, listener)
  t.teardown(() => diagnostics.unsubscribe(RATE_LIMIT_CHANNEL, listener))
  const app = await build(t, { capacity: 1, refillPerSecond: 1, now: clock().now })
  await app.inject('/')
  await app.inject('/')
  t.match(events, [{ type: 'limited', route: 'GET /', violatedPolicies: ['default'], retryAfterMs: 1000 }])
})

t.test('plugin metadata', async (t) => {
  const meta = (spillwayRateLimit as unknown as Record<symbol, { name: string, fastify: string }>)[Symbol.for('plugin-meta')]
  t.equal(meta?.name, '@spillway/rate-limit')
  t.equal(meta?.fastify, '5.x')
})
