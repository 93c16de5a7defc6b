import t from 'tap'
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
