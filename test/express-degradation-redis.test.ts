/**
 * @spillway/express's degradation middleware sharing overrides through a real Redis, with clients
 * the application passes in: an override decided on one Express instance reaches another, whose
 * responses then carry the fallback and the degraded header.
 */
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { redisTestOptions, REDIS_URL } from './support/redis.js'
import { Redis } from '../packages/degradation/test/support/redis-server.js'
import { degradation } from '../packages/express/src/degradation.js'
import { express } from '../packages/express/test/helpers/express.js'
import { serve } from '../packages/express/test/helpers/serve.js'

const opts = await redisTestOptions()
const silent = { warn: () => {}, info: () => {} }
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function startInstance(t: Test, prefix: string) {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 })
  redis.on('error', () => {})
  t.teardown(() => { redis.disconnect() })
  const degrade = degradation({
    features: [{ name: 'recommendations', offAtLevel: 1, fallback: ['popular'] }],
    redis: { client: redis, prefix, refreshIntervalMs: 500 },
    evaluateIntervalMs: 50,
    logger: silent
  })
  t.teardown(() => degrade.close())
  const app = express()
  app.use(degrade)
  app.get('/page', async (req, res) => { res.json(await req.degrade('recommendations', () => ['personal'])) })
  return { degrade, base: await serve(t, app) }
}

t.test('an override decided on one Express instance reaches another', opts, async (t) => {
  const prefix = `test-express-degradation-${randomBytes(6).toString('hex')}:`
  t.teardown(async () => {
    const cleanup = new Redis(REDIS_URL)
    await cleanup.del(`${prefix}overrides`)
    cleanup.disconnect()
  })
  const a = await startInstance(t, prefix)
  const b = await startInstance(t, prefix)
  await sleep(100)
  t.same(await (await fetch(`${b.base}/page`)).json(), ['personal'])
  a.degrade.degradation.overrides.forceLevel(1, { reason: 'integration' })
  for (let i = 0; i < 40 && b.degrade.degradation.level !== 1; i++) await sleep(50)
  t.equal(b.degrade.degradation.level, 1, 'adopted by the other instance')
  const response = await fetch(`${b.base}/page`)
  t.same(await response.json(), ['popular'])
  t.equal(response.headers.get('spillway-degraded'), 'recommendations')
  a.degrade.degradation.overrides.clearLevel()
  for (let i = 0; i < 40 && b.degrade.degradation.level !== 0; i++) await sleep(50)
  t.equal(b.degrade.degradation.level, 0, 'and cleared everywhere')
})
