import t from 'tap'
import Fastify from 'fastify'
import { RateLimiterMemory } from 'rate-limiter-flexible'
import { spillwayRateLimit } from '../src/plugin.js'

t.test('a rate-limiter-flexible limiter as a fixed-window policy beside a token bucket', async (t) => {
  const daily = new RateLimiterMemory({ points: 3, duration: 86400 })
  const app = Fastify()
  await app.register(spillwayRateLimit, {
    now: () => 0,
    policies: [{ name: 'burst', capacity: 2, refillPerSecond: 0.001 }, { name: 'daily', limiter: daily }]
  })
  app.get('/', async () => 'ok')
  t.teardown(() => app.close())
  const first = await app.inject('/')
  t.equal(first.statusCode, 200)
  t.equal(first.headers['ratelimit-policy'], '"burst";q=2;w=2000, "daily";q=3;w=86400')
  t.match(first.headers['ratelimit'], /^"burst";r=1;t=1000, "daily";r=2;t=86400$/)
  t.equal((await app.inject('/')).statusCode, 200)
  const refused = await app.inject('/')
  t.equal(refused.statusCode, 429)
  t.same(refused.json()['violated-policies'], ['burst'])
  t.equal((await daily.get('127.0.0.1'))?.consumedPoints, 2, 'the bucket refused, so the daily point was given back')
})

t.test('a refusing flexible policy leaves the bucket untouched', async (t) => {
  const perMinute = new RateLimiterMemory({ points: 1, duration: 60 })
  const app = Fastify()
  await app.register(spillwayRateLimit, {
    now: () => 0,
    policies: [{ name: 'burst', capacity: 5, refillPerSecond: 0.001 }, { name: 'minute', limiter: perMinute }]
  })
  app.get('/', async () => 'ok')
  t.teardown(() => app.close())
  await app.inject('/')
  const refused = await app.inject('/')
  t.equal(refused.statusCode, 429)
  t.same(refused.json()['violated-policies'], ['minute'])
  t.ok(Number(refused.headers['retry-after']) >= 59)
  perMinute.delete('127.0.0.1')
  t.match((await app.inject('/')).headers['ratelimit'], /^"burst";r=3;/, '5 − 1 − 0 (refused) − 1')
})

t.test('a flexible policy alone, and its store failing lets the request through (onStoreError local/open)', async (t) => {
  const broken = {
    points: 10,
    duration: 60,
    consume: async () => { throw new Error('ECONNREFUSED') },
    reward: async () => ({})
  }
  const app = Fastify()
  await app.register(spillwayRateLimit, { policies: [{ name: 'pg', limiter: broken }] })
  app.get('/', async () => 'ok')
  t.teardown(() => app.close())
  const res = await app.inject('/')
  t.equal(res.statusCode, 200)
  t.notOk(res.headers['ratelimit'], 'no figures to report')
  t.equal(app.rateLimit.stats().storeErrors, 1)

  const closed = Fastify()
  await closed.register(spillwayRateLimit, { onStoreError: 'closed', policies: [{ name: 'pg', limiter: broken }] })
  closed.get('/', async () => 'ok')
  t.teardown(() => closed.close())
  const refused = await closed.inject('/')
  t.equal(refused.statusCode, 429)
  t.equal(refused.headers['retry-after'], '1')
})
