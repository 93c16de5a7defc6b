import diagnostics from 'node:diagnostics_channel'
import express, { type Express } from 'express'
import t, { type Test } from 'tap'
import { RATE_LIMIT_CHANNEL, QUOTA_EXCEEDED_TYPE, type RateLimitEvent } from '@spillway/rate-limit'
import { rateLimit, type ExpressRateLimitOptions, type RateLimitMiddleware } from '../src/rate-limit.js'
import { PROBLEM_CONTENT_TYPE } from '../src/respond.js'
import { manualClock, serve } from './helpers/serve.js'

const silent = { warn: () => {}, info: () => {} }

/** An app with the limiter mounted first and `routes` after it (a plain `GET /` by default). */
async function build(t: Test, options: ExpressRateLimitOptions, routes?: (app: Express, limit: RateLimitMiddleware) => void) {
  const app = express()
  const limit = rateLimit({ logger: silent, ...options })
  t.teardown(() => limit.close())
  app.use(limit)
  if (routes === undefined) app.get('/', (_req, res) => { res.send('ok') })
  else routes(app, limit)
  app.use((error: { code?: string, statusCode?: number }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(error.statusCode ?? 500).json({ code: error.code })
  })
  const base = await serve(t, app)
  const get = (path = '/', init?: RequestInit) => fetch(`${base}${path}`, init)
  return { app, limit, get }
}

t.test('admits the burst, then 429 with problem+json, Retry-After and the draft headers', async (t) => {
  const c = manualClock()
  const { limit, get } = await build(t, { capacity: 3, refillPerSecond: 1, now: c.now })
  for (let i = 0; i < 3; i++) {
    const res = await get()
    t.equal(res.status, 200)
    t.equal(res.headers.get('ratelimit-policy'), '"default";q=3;w=3')
    t.equal(res.headers.get('ratelimit'), `"default";r=${2 - i};t=${i + 1}`)
    await res.text()
  }
  const refused = await get()
  t.equal(refused.status, 429)
  t.equal(refused.headers.get('retry-after'), '1')
  t.equal(refused.headers.get('ratelimit'), '"default";r=0;t=1', 't equals Retry-After on a refusal')
  t.equal(refused.headers.get('content-type'), PROBLEM_CONTENT_TYPE)
  t.same(await refused.json(), {
    type: QUOTA_EXCEEDED_TYPE,
    title: 'Too Many Requests',
    status: 429,
    detail: 'Rate limit exceeded; retry in 1 s.',
    'violated-policies': ['default']
  })
  c.advance(999)
  t.equal((await get()).status, 429, 'a token is 1000 ms away, not 999')
  c.advance(1)
  t.equal((await get()).status, 200)
  t.equal(limit.stats().allowed, 4)
  t.equal(limit.stats().limited, 2)
  t.equal(limit.store, 'memory')
  t.equal(limit.degraded, false)
})

t.test('Retry-After is whole seconds rounded up: 0.4 tokens/s missing one token is 3 s', async (t) => {
  const { get } = await build(t, { capacity: 1, refillPerSecond: 0.4, now: manualClock().now })
  await (await get()).text()
  const refused = await get()
  t.equal(refused.headers.get('retry-after'), '3', '2500 ms rounds up to 3 s')
  t.equal(refused.headers.get('ratelimit-policy'), '"default";q=1;w=3')
})

t.test('each client IP has its own bucket (req.ip, so Express\'s trust proxy applies)', async (t) => {
  const { get } = await build(t, { capacity: 1, refillPerSecond: 1, now: manualClock().now }, (app) => {
    app.set('trust proxy', true)
    app.get('/', (_req, res) => { res.send('ok') })
  })
  const from = (ip: string) => get('/', { headers: { 'x-forwarded-for': ip } })
  t.equal((await from('10.0.0.1')).status, 200)
  t.equal((await from('10.0.0.1')).status, 429)
  t.equal((await from('10.0.0.2')).status, 200)
})

t.test('several policies: passes only if all have tokens, and a refusal takes from none', async (t) => {
  const c = manualClock()
  const { get } = await build(t, {
    policies: [{ name: 'burst', capacity: 2, refillPerSecond: 2 }, { name: 'quota', capacity: 5, refillPerSecond: 5 / 3600 }],
    now: c.now
  })
  const first = await get()
  t.equal(first.headers.get('ratelimit-policy'), '"burst";q=2;w=1, "quota";q=5;w=3600')
  t.equal(first.headers.get('ratelimit'), '"burst";r=1;t=1, "quota";r=4;t=720')
  await get()
  const burstRefused = await get()
  t.equal(burstRefused.status, 429)
  t.same((await burstRefused.json() as Record<string, unknown>)['violated-policies'], ['burst'])
  t.match(burstRefused.headers.get('ratelimit'), /"quota";r=3;/, 'the quota was not charged for the refused request')
  c.advance(1000)
  t.equal((await get()).status, 200)
  t.equal((await get()).status, 200)
  c.advance(1000)
  t.equal((await get()).status, 200, 'the fifth and last of the quota')
  const quotaRefused = await get()
  t.equal(quotaRefused.status, 429)
  t.same((await quotaRefused.json() as Record<string, unknown>)['violated-policies'], ['quota'])
  t.match(quotaRefused.headers.get('ratelimit'), /^"burst";r=1;t=1, "quota";r=0;t=718$/, 'the burst bucket was not charged either')
  t.equal(quotaRefused.headers.get('retry-after'), '718')
})

t.test('cost as a number and as a function of the request, per route', async (t) => {
  const { get } = await build(t, { global: false, capacity: 10, refillPerSecond: 1, now: manualClock().now }, (app, limit) => {
    app.get('/cheap', limit.route(), (_req, res) => { res.send('ok') })
    app.get('/heavy', limit.route({ cost: 4 }), (_req, res) => { res.send('ok') })
    app.post('/upload', limit.route({ cost: (req) => Number(req.headers['x-units'] ?? 1) }), (_req, res) => { res.send('ok') })
  })
  t.match((await get('/heavy')).headers.get('ratelimit'), /r=6;/)
  t.match((await get('/heavy')).headers.get('ratelimit'), /r=2;/)
  t.equal((await get('/heavy')).status, 429, 'needs 4, has 2')
  t.equal((await get('/upload', { method: 'POST', headers: { 'x-units': '2' } })).status, 200, 'shares the bucket')
  t.equal((await get('/cheap')).status, 429)
  const bad = await get('/upload', { method: 'POST', headers: { 'x-units': 'lots' } })
  t.equal(bad.status, 500)
  t.same(await bad.json(), { code: 'SPILLWAY_RATE_LIMIT_COST' })
})

t.test('per-route mounting: a route with its own limits gets its own bucket; an unmounted route is unlimited', async (t) => {
  const c = manualClock()
  const app = express()
  const global = rateLimit({ capacity: 2, refillPerSecond: 1, now: c.now, logger: silent })
  const login = rateLimit({ capacity: 1, refillPerSecond: 1 / 60, now: c.now, logger: silent })
  t.teardown(async () => { await global.close(); await login.close() })
  app.get('/health', (_req, res) => { res.send('ok') })
  app.post('/login', login, (_req, res) => { res.send('ok') })
  const api = express.Router()
  api.use(global)
  api.get('/a', (_req, res) => { res.send('ok') })
  app.use('/api', api)
  const base = await serve(t, app)
  const first = await fetch(`${base}/login`, { method: 'POST' })
  t.equal(first.headers.get('ratelimit-policy'), '"default";q=1;w=60')
  const refused = await fetch(`${base}/login`, { method: 'POST' })
  t.equal(refused.status, 429)
  t.equal(refused.headers.get('retry-after'), '60')
  t.equal((await fetch(`${base}/api/a`)).status, 200, 'the router\'s bucket is untouched by /login')
  t.equal((await fetch(`${base}/api/a`)).status, 200)
  t.equal((await fetch(`${base}/api/a`)).status, 429)
  for (let i = 0; i < 5; i++) {
    const health = await fetch(`${base}/health`)
    t.equal(health.status, 200)
    t.equal(health.headers.get('ratelimit'), null, 'no headers on an unlimited route')
  }
})

t.test('limiter.route() with its own limits, and a route overriding only capacity keeps the refill rate', async (t) => {
  const { get } = await build(t, { global: false, capacity: 10, refillPerSecond: 2, now: manualClock().now }, (app, limit) => {
    app.get('/r', limit.route({ capacity: 4 }), (_req, res) => { res.send('ok') })
    app.get('/login', limit.route({ capacity: 1, refillPerSecond: 1 / 60 }, 'POST /login'), (_req, res) => { res.send('ok') })
    app.get('/plain', limit.route(true), (_req, res) => { res.send('ok') })
    app.get('/free', (_req, res) => { res.send('ok') })
  })
  t.equal((await get('/r')).headers.get('ratelimit-policy'), '"default";q=4;w=2')
  t.equal((await get('/login')).status, 200)
  t.equal((await get('/login')).status, 429)
  t.equal((await get('/plain')).headers.get('ratelimit-policy'), '"default";q=10;w=5')
  t.equal((await get('/free')).headers.get('ratelimit'), null, 'global: false limits only what asks')
})

t.test('key function, allow list and errorResponseBuilder/onLimited', async (t) => {
  const limited: string[] = []
  const { get } = await build(t, {
    capacity: 1,
    refillPerSecond: 1,
    now: manualClock().now,
    key: (req) => String(req.headers['x-api-key'] ?? req.ip),
    allowList: ['internal'],
    onLimited: (_req, res, context) => {
      limited.push(`${context.key} ${context.route} ${context.violatedPolicies.join()}`)
      res.setHeader('x-limited', 'yes')
    },
    errorResponseBuilder: (_req, context) => ({ error: 'slow down', retryIn: context.retryAfterSeconds })
  })
  const as = (key: string) => get('/', { headers: { 'x-api-key': key } })
  t.equal((await as('k1')).status, 200)
  const refused = await as('k1')
  t.equal(refused.status, 429)
  t.equal(refused.headers.get('x-limited'), 'yes')
  t.equal(refused.headers.get('retry-after'), '1')
  t.same(await refused.json(), { error: 'slow down', retryIn: 1 })
  t.equal((await as('k2')).status, 200)
  for (let i = 0; i < 3; i++) {
    const res = await as('internal')
    t.equal(res.status, 200)
    t.equal(res.headers.get('ratelimit'), null, 'allow-listed requests are not counted')
  }
  t.same(limited, ['k1 * default'])
})

t.test('headers: off, legacy X-RateLimit-*, and CORS exposure', async (t) => {
  const off = await build(t, { headers: false, capacity: 1, refillPerSecond: 1, now: manualClock().now })
  await (await off.get()).text()
  const refused = await off.get()
  t.equal(refused.headers.get('ratelimit'), null)
  t.equal(refused.headers.get('retry-after'), '1', 'Retry-After stays on every 429')

  const legacy = await build(t, {
    legacyHeaders: true,
    exposeHeaders: true,
    policies: [{ name: 'burst', capacity: 5, refillPerSecond: 5 }, { name: 'quota', capacity: 3, refillPerSecond: 1 / 60 }],
    now: manualClock().now
  })
  const res = await legacy.get()
  t.equal(res.headers.get('x-ratelimit-limit'), '3', 'the policy with fewest tokens left')
  t.equal(res.headers.get('x-ratelimit-remaining'), '2')
  t.equal(res.headers.get('x-ratelimit-reset'), '60')
  t.equal(res.headers.get('access-control-expose-headers'),
    'RateLimit-Policy, RateLimit, Retry-After, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset')
})

t.test('mounted after an auth middleware, the key sees what it put on the request', async (t) => {
  const app = express()
  app.use((req, _res, next) => { (req as unknown as { user: string }).user = String(req.headers['x-user']); next() })
  const limit = rateLimit({ capacity: 1, refillPerSecond: 1, now: manualClock().now, key: (req) => (req as unknown as { user: string }).user })
  t.teardown(() => limit.close())
  app.use(limit)
  app.get('/', (_req, res) => { res.send('ok') })
  const base = await serve(t, app)
  const as = (user: string) => fetch(base, { headers: { 'x-user': user } })
  t.equal((await as('ann')).status, 200)
  t.equal((await as('ann')).status, 429)
  t.equal((await as('bob')).status, 200)
})

t.test('publishes limited events on diagnostics_channel', async (t) => {
  const events: RateLimitEvent[] = []
  const listener = (message: unknown) => { events.push(message as RateLimitEvent) }
  diagnostics.subscribe(RATE_LIMIT_CHANNEL, listener)
  t.teardown(() => diagnostics.unsubscribe(RATE_LIMIT_CHANNEL, listener))
  const { get } = await build(t, { capacity: 1, refillPerSecond: 1, now: manualClock().now })
  await (await get()).text()
  await (await get()).text()
  t.match(events, [{ type: 'limited', route: '*', violatedPolicies: ['default'], retryAfterMs: 1000 }])
})

t.test('bad options throw at creation with the plugin code and message', async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ['capacity', { capacity: 0 }, /capacity must be an integer in \[1, 1000000000000\], got 0/],
    ['refill', { refillPerSecond: -1 }, /refillPerSecond must be a finite number > 0, got -1/],
    ['cost above capacity', { capacity: 2, cost: 3 }, /cost must be at most the capacity/],
    ['redis', { redis: 'http://nope' }, /redis must be an ioredis client or a redis:\/\/ URL/],
    ['onStoreError', { onStoreError: 'sometimes' }, /onStoreError must be one of/],
    ['hook', { hook: 'preHandler' }, /hook must be absent/],
    ['logger', { logger: { warn: 1 } }, /logger must be/]
  ]
  for (const [name, options, message] of cases) {
    t.throws(() => rateLimit(options as ExpressRateLimitOptions), { code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message }, name)
  }
  const limit = rateLimit({ capacity: 2 })
  t.teardown(() => limit.close())
  t.throws(() => limit.route({ capacity: 1, cost: 2 }), { code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message: /config\.rateLimit\.cost/ })
  t.throws(() => limit.route(true, ''), { code: 'SPILLWAY_RATE_LIMIT_OPTIONS' })
})

t.test('an unknown option throws at creation, the middleware\'s own logger among the known names', async (t) => {
  t.throws(() => rateLimit({ capacity: 5, burst: 1 } as never), {
    code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message: /^burst is not an option; the options are capacity, .*, now, logger$/
  })
})

t.test('a misspelt option throws at creation with a did-you-mean', async (t) => {
  t.throws(() => rateLimit({ capacity: 10, refilPerSecond: 5 } as never), {
    code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message: /^refilPerSecond is not an option; did you mean refillPerSecond\?$/
  })
  t.throws(() => rateLimit({ loger: silent } as never), { code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message: /^loger is not an option; did you mean logger\?$/ })
})

t.test('express-rate-limit\'s names name ours', async (t) => {
  t.throws(() => rateLimit({ windowMs: 60_000, limit: 100 } as never), {
    code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message: /^windowMs is an option of express-rate-limit, not ours; the window is set by refillPerSecond and capacity/
  })
  t.throws(() => rateLimit({ limit: 100 } as never), { message: /^limit is an option of express-rate-limit, not ours; a bucket holds capacity tokens/ })
  t.throws(() => rateLimit({ max: 100 } as never), { message: /^max is an option of @fastify\/rate-limit and express-rate-limit, not ours;/ })
  t.throws(() => rateLimit({ keyGenerator: () => 'k' } as never), { message: /^keyGenerator is an option of .*, not ours; key is the client key/ })
})

t.test('an unknown key in a nested option throws at creation, named by its path', async (t) => {
  t.throws(() => rateLimit({ pacing: { maxDelay: 500 } } as never), {
    code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message: /^pacing\.maxDelay is not an option; did you mean maxDelayMs\?$/
  })
})

t.test('an unknown key in a route\'s settings throws when the route middleware is created', async (t) => {
  const limit = rateLimit({ capacity: 5, logger: silent })
  t.teardown(() => limit.close())
  t.throws(() => limit.route({ refilPerSecond: 1 } as never), {
    code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message: /^config\.rateLimit\.refilPerSecond is not an option; did you mean refillPerSecond\?$/
  })
  t.throws(() => limit.route({ windowMs: 60_000 } as never), { message: /^config\.rateLimit\.windowMs is an option of express-rate-limit, not ours;/ })
})

t.test('every option known: a full configuration is created and limits', async (t) => {
  const { get } = await build(t, {
    capacity: 1, refillPerSecond: 1, key: (request) => request.ip ?? '', cost: 1, allowList: [], global: true, maxKeyLength: 64, prefix: 'rl',
    maxKeys: 100, onStoreError: 'local', storeTimeoutMs: 20, probeIntervalMs: 500, instances: 1, headers: true, legacyHeaders: false,
    exposeHeaders: false, errorResponseBuilder: () => ({ limited: true }), onLimited: () => {}, pacing: false, now: manualClock().now, logger: silent
  })
  t.equal((await get()).status, 200)
  t.equal((await get()).status, 429)
})
