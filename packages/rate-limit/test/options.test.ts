import t, { type Test } from 'tap'
import Fastify from 'fastify'
import { spillwayRateLimit } from '../src/plugin.js'

/** Each bad option must fail at registration, with our code and a message naming the option and the value. */
const bad: Array<[string, Record<string, unknown>, RegExp]> = [
  ['capacity', { capacity: 0 }, /^capacity must be an integer in \[1, 1000000000000\], got 0$/],
  ['capacity', { capacity: 2.5 }, /^capacity must be an integer .*got 2\.5$/],
  ['refillPerSecond', { refillPerSecond: 0 }, /^refillPerSecond must be a finite number > 0, got 0$/],
  ['refillPerSecond', { refillPerSecond: Infinity }, /^refillPerSecond .*got Infinity$/],
  ['refillPerSecond', { refillPerSecond: '5' }, /^refillPerSecond .*got "5"$/],
  ['policies', { policies: [] }, /^policies must be an array of 1 to 16 policies, got an array of 0$/],
  ['policies', { policies: 'burst' }, /^policies must be .*got "burst"$/],
  ['policies[0]', { policies: [null] }, /^policies\[0\] must be an object, got null$/],
  ['policies[0].name', { policies: [{ name: 'a b', capacity: 1, refillPerSecond: 1 }] }, /^policies\[0\]\.name must be .*got "a b"$/],
  ['policies[1].name', { policies: [{ name: 'a', capacity: 1, refillPerSecond: 1 }, { name: 'a', capacity: 2, refillPerSecond: 1 }] }, /^policies\[1\]\.name must be unique/],
  ['policies[0].capacity', { policies: [{ name: 'a', refillPerSecond: 1 }] }, /^policies\[0\]\.capacity must be .*got undefined$/],
  ['policies[0].refillPerSecond', { policies: [{ name: 'a', capacity: 1, refillPerSecond: -1 }] }, /^policies\[0\]\.refillPerSecond .*got -1$/],
  ['policies[0].limiter', { policies: [{ name: 'a', limiter: {} }] }, /^policies\[0\]\.limiter must be a rate-limiter-flexible limiter, got an object$/],
  ['capacity with policies', { capacity: 5, policies: [{ name: 'a', capacity: 1, refillPerSecond: 1 }] }, /^capacity must be absent when policies are given/],
  ['global', { global: 'yes' }, /^global must be true or false, got "yes"$/],
  ['key', { key: 'ip' }, /^key must be a function, got "ip"$/],
  ['cost', { cost: -1 }, /^cost must be a finite number in \[0, 1000000000000\], got -1$/],
  ['cost', { cost: NaN }, /^cost .*got NaN$/],
  ['cost', { capacity: 5, cost: 6 }, /^cost must be at most the capacity of policy "default" \(5\), got 6$/],
  ['allowList', { allowList: [1, 2] }, /^allowList must be an array of strings or a function, got an array of 2$/],
  ['maxKeyLength', { maxKeyLength: 8 }, /^maxKeyLength must be an integer in \[16, 4096\], got 8$/],
  ['maxKeys', { maxKeys: 1.5 }, /^maxKeys must be an integer >= 10, got 1\.5$/],
  ['redis', { redis: 'localhost:6379' }, /^redis must be an ioredis client or a redis:\/\/ URL, got "localhost:6379"$/],
  ['redis', { redis: {} }, /^redis must be .*got an object$/],
  ['prefix', { prefix: 'a{b}' }, /^prefix must be .*got "a\{b\}"$/],
  ['prefix', { prefix: '' }, /^prefix must be/],
  ['onStoreError', { onStoreError: 'ignore' }, /^onStoreError must be one of "local", "open", "closed", got "ignore"$/],
  ['storeTimeoutMs', { storeTimeoutMs: 0 }, /^storeTimeoutMs must be a finite number in \[1, 60000\], got 0$/],
  ['probeIntervalMs', { probeIntervalMs: 5 }, /^probeIntervalMs must be .*got 5$/],
  ['instances', { instances: 0 }, /^instances must be an integer in \[1, 100000\], got 0$/],
  ['headers', { headers: 1 }, /^headers must be true or false, got 1$/],
  ['legacyHeaders', { legacyHeaders: 'no' }, /^legacyHeaders must be true or false/],
  ['exposeHeaders', { exposeHeaders: 'yes' }, /^exposeHeaders must be true or false, got "yes"$/],
  ['hook', { hook: 'onSend' }, /^hook must be one of "onRequest", "preHandler", got "onSend"$/],
  ['errorResponseBuilder', { errorResponseBuilder: {} }, /^errorResponseBuilder must be a function, got an object$/],
  ['onLimited', { onLimited: true }, /^onLimited must be a function, got true$/],
  ['now', { now: 0 }, /^now must be a function, got 0$/]
]

for (const [option, options, message] of bad) {
  t.test(`bad ${option} fails at registration: ${JSON.stringify(options, (_k, v) => Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Infinity' : v)}`, async (t) => {
    const app = Fastify()
    t.teardown(() => app.close())
    const error = await app.register(spillwayRateLimit, options as never).ready().then(() => undefined, (e: unknown) => e)
    t.match(error, { code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message })
  })
}

t.test('options that are not an object fail', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const error = await app.register(spillwayRateLimit, 'fast' as never).ready().then(() => undefined, (e: unknown) => e)
  t.match(error, { code: 'SPILLWAY_RATE_LIMIT_OPTIONS' })
})

t.test('a bad route config fails when the route is registered, naming config.rateLimit', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(spillwayRateLimit)
  t.throws(() => app.get('/', { config: { rateLimit: { capacity: -1 } } }, async () => 'ok'),
    { code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message: /^config\.rateLimit\.capacity must be .*got -1$/ })
  t.throws(() => app.get('/b', { config: { rateLimit: 'fast' as never } }, async () => 'ok'),
    { code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message: /^config\.rateLimit must be an object, got "fast"$/ })
  t.throws(() => app.get('/c', { config: { rateLimit: { cost: -2 } } }, async () => 'ok'),
    { code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message: /^config\.rateLimit\.cost must be/ })
  t.throws(() => app.get('/d', { config: { rateLimit: { capacity: 2, cost: 3 } } }, async () => 'ok'),
    { code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message: /^config\.rateLimit\.cost must be at most the capacity of policy "default" \(2\), got 3$/ })
})

t.test('defaults: 60 tokens, 1 per second, headers on', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(spillwayRateLimit)
  app.get('/', async () => 'ok')
  const res = await app.inject('/')
  t.equal(res.headers['ratelimit-policy'], '"default";q=60;w=60')
  t.equal(res.headers['ratelimit'], '"default";r=59;t=1')
})

/** Registers the plugin with `options` and answers what `ready()` rejected with. */
async function registrationError(t: Test, options: unknown): Promise<unknown> {
  const app = Fastify()
  t.teardown(() => app.close())
  return app.register(spillwayRateLimit, options as never).ready().then(() => undefined, (e: unknown) => e)
}

t.test('an unknown option fails at registration', async (t) => {
  t.match(await registrationError(t, { capacity: 10, burst: 5 }), {
    code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message: /^burst is not an option; the options are capacity, refillPerSecond, policies, key, /
  })
})

t.test('a misspelt option fails with a did-you-mean', async (t) => {
  t.match(await registrationError(t, { capacity: 10, refilPerSecond: 5 }), {
    code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message: /^refilPerSecond is not an option; did you mean refillPerSecond\?$/
  })
})

t.test('names from @fastify/rate-limit and express-rate-limit name ours', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ max: 100 }, /^max is an option of @fastify\/rate-limit and express-rate-limit, not ours; a bucket holds capacity tokens .* earns refillPerSecond/],
    [{ timeWindow: 60_000 }, /^timeWindow is an option of @fastify\/rate-limit, not ours; the window is set by refillPerSecond and capacity/],
    [{ keyGenerator: () => 'k' }, /^keyGenerator is an option of @fastify\/rate-limit and express-rate-limit, not ours; key is the client key/],
    [{ windowMs: 60_000 }, /^windowMs is an option of express-rate-limit, not ours; the window is set by refillPerSecond and capacity/],
    [{ limit: 100 }, /^limit is an option of express-rate-limit, not ours; a bucket holds capacity tokens/],
    [{ skipOnError: true }, /^skipOnError is an option of @fastify\/rate-limit, not ours; onStoreError: 'open'/]
  ]
  for (const [options, message] of cases) {
    t.match(await registrationError(t, options), { code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message }, String(Object.keys(options)))
  }
})

t.test('an unknown key in a nested option fails at registration, named by its path', async (t) => {
  t.match(await registrationError(t, { pacing: { maxDelay: 500 } }), { message: /^pacing\.maxDelay is not an option; did you mean maxDelayMs\?$/ })
  t.match(await registrationError(t, { policies: [{ name: 'burst', capacity: 5, refilPerSecond: 5 }] }),
    { message: /^policies\[0\]\.refilPerSecond is not an option; did you mean refillPerSecond\?$/ }, 'a token-bucket policy')
  const limiter = { points: 5, duration: 1, consume: async () => ({ remainingPoints: 0, msBeforeNext: 0 }), reward: async () => ({}) }
  t.match(await registrationError(t, { policies: [{ name: 'pg', limiter, capacity: 5 }] }),
    { message: /^policies\[0\]\.capacity is not an option; policies\[0\] takes name, limiter$/ }, 'a rate-limiter-flexible policy')
})

t.test('an unknown key in config.rateLimit fails when the route is defined', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(spillwayRateLimit)
  t.throws(() => app.get('/', { config: { rateLimit: { refilPerSecond: 1 } } }, async () => 'ok'),
    { code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message: /^config\.rateLimit\.refilPerSecond is not an option; did you mean refillPerSecond\?$/ })
})

t.test('an unknown key in config.rateLimit of a route in a plugin makes ready() reject', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(spillwayRateLimit)
  app.register(async (routes) => {
    routes.get('/', { config: { rateLimit: { capacity: 5, timeWindow: 60_000 } } }, async () => 'ok')
  })
  await t.rejects(async () => { await app.ready() }, {
    code: 'SPILLWAY_RATE_LIMIT_OPTIONS', message: /^config\.rateLimit\.timeWindow is an option of @fastify\/rate-limit, not ours; the window is set by/
  })
})

t.test('config.rateLimit takes the route options only', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(spillwayRateLimit)
  t.throws(() => app.get('/', { config: { rateLimit: { headers: false } as never } }, async () => 'ok'), {
    message: /^config\.rateLimit\.headers is not an option; config\.rateLimit takes capacity, refillPerSecond, policies, key, cost, allowList$/
  })
})

t.test('every option known: a full configuration and a full route config register', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(spillwayRateLimit, {
    capacity: 10, refillPerSecond: 5, key: (request) => request.ip, cost: 1, allowList: ['127.0.0.2'], global: true, maxKeyLength: 64,
    prefix: 'rl', maxKeys: 100, onStoreError: 'local', storeTimeoutMs: 20, probeIntervalMs: 500, instances: 2, headers: true,
    legacyHeaders: true, exposeHeaders: true, hook: 'onRequest', errorResponseBuilder: () => ({}), onLimited: () => {},
    pacing: { afterRefusals: 2, afterMs: 0, minDelayMs: 100, maxDelayMs: 200, maxHeld: 10 }, now: () => 0
  })
  app.get('/', { config: { rateLimit: { capacity: 2, refillPerSecond: 1, key: () => 'k', cost: 1, allowList: ['x'] } } }, async () => 'ok')
  app.get('/policies', { config: { rateLimit: { policies: [{ name: 'burst', capacity: 2, refillPerSecond: 1 }] } } }, async () => 'ok')
  await app.ready()
  t.equal((await app.inject('/')).statusCode, 200)
})
