/**
 * ioredis is an optional peer accepting 5 and 6 (the issue: an application on ioredis 5 could not
 * pass its client without a type error). A client of either major version is passed as the
 * application typed it, without a cast, to the rate limiter and to degradation's override sharing,
 * on Fastify and on Express, and works against the real Redis. `pnpm check` type-checks this file,
 * so a type error here is a failed check before it is a failed test.
 */
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { Redis as Redis5, type Cluster as Cluster5 } from 'ioredis5'
import { Redis as Redis6, type Cluster as Cluster6 } from '../packages/degradation/test/support/redis-server.js'
import { spillwayRateLimit, type RateLimitOptions } from '../packages/rate-limit/src/index.js'
import degradation from '../packages/degradation/src/index.js'
import { rateLimit } from '../packages/express/src/rate-limit.js'
import { degradation as expressDegradation } from '../packages/express/src/degradation.js'
import { express } from '../packages/express/test/helpers/express.js'
import { serve } from '../packages/express/test/helpers/serve.js'
import { Fastify } from '../packages/rate-limit/test/support/fastify.js'
import { waitFor } from '../packages/degradation/test/support/http.js'
import { REDIS_URL, redisTestOptions } from './support/redis.js'

const opts = await redisTestOptions()
const silent = { warn: () => {}, info: () => {} }
const unique = (name: string) => `test-ioredis-${name}-${randomBytes(6).toString('hex')}`

const versions = [
  ['ioredis 5', (url: string) => new Redis5(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })],
  ['ioredis 6', (url: string) => new Redis6(url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })]
] as const

async function connected<C extends Redis5 | Redis6>(t: Test, client: C): Promise<C> {
  client.on('error', () => {})
  t.teardown(() => { client.disconnect() })
  if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve))
  return client
}

t.test('a Cluster of either version is a rate limiter client too', async (t) => {
  // Compile-time: both assignments fail to type-check if the option names ioredis's classes.
  const accepted: Array<RateLimitOptions['redis']> = [undefined as Cluster5 | undefined, undefined as Cluster6 | undefined]
  t.equal(accepted.length, 2)
})

for (const [version, connect] of versions) {
  t.test(`${version}: the Fastify rate limiter decides in Redis`, opts, async (t) => {
    const redis = await connected(t, connect(REDIS_URL))
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(spillwayRateLimit, { redis, prefix: unique('fastify'), capacity: 2, refillPerSecond: 0.001, storeTimeoutMs: 5000 })
    app.get('/', async () => 'ok')
    const statuses = []
    for (let i = 0; i < 3; i++) statuses.push((await app.inject('/')).statusCode)
    t.same(statuses, [200, 200, 429])
    t.equal(app.rateLimit.store, 'redis')
    t.match(app.rateLimit.stats(), { storeErrors: 0, fallbackDecisions: 0 })
  })

  t.test(`${version}: the Express rate limiter decides in Redis`, opts, async (t) => {
    const redis = await connected(t, connect(REDIS_URL))
    const limit = rateLimit({ redis, prefix: unique('express'), capacity: 1, refillPerSecond: 0.001, storeTimeoutMs: 5000, logger: silent })
    t.teardown(() => limit.close())
    const app = express()
    app.use(limit)
    app.get('/', (_req, res) => { res.send('ok') })
    const url = await serve(t, app)
    const statuses = []
    for (let i = 0; i < 2; i++) statuses.push((await fetch(url)).status)
    t.same(statuses, [200, 429])
    t.match(limit.stats(), { storeErrors: 0, fallbackDecisions: 0 })
  })
}

t.test('degradation shares an override between a Fastify app on ioredis 5 and an Express app on ioredis 6', opts, async (t) => {
  const prefix = `${unique('degradation')}:`
  const features = [{ name: 'recommendations', offAtLevel: 1, fallback: [] }]
  const client5 = await connected(t, new Redis5(REDIS_URL))
  const client6 = await connected(t, new Redis6(REDIS_URL))
  t.teardown(async () => { await client6.del(`${prefix}overrides`) })

  // Both re-read the key every 200 ms: a pin published before the other subscribed still arrives.
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(degradation, { features, redis: { client: client5, prefix, refreshIntervalMs: 200 } })
  await app.ready()
  const middleware = expressDegradation({ features, redis: { client: client6, prefix, refreshIntervalMs: 200 }, logger: silent })
  t.teardown(() => middleware.close())

  app.degradation.overrides.pin('recommendations', false)
  await waitFor('the Express app adopts the pin made on Fastify', () => !middleware.degradation.isOn('recommendations'), 3000)
  middleware.degradation.overrides.unpin('recommendations')
  await waitFor('the Fastify app adopts the unpin made on Express', () => app.degradation.isOn('recommendations'), 3000)
  t.equal(app.degradation.status().redisErrors, 0)
  t.equal(middleware.degradation.status().redisErrors, 0)
})
