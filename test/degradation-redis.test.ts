/**
 * @spillway/degradation sharing overrides through a real Redis: an override set on one instance
 * reaches another; with the Redis stopped both keep their last state and requests see no errors;
 * when it comes back, sharing resumes.
 */
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import degradation from '../packages/degradation/src/index.js'
import { Fastify, agent, get, sleep, waitFor } from '../packages/degradation/test/support/http.js'
import { Redis, freePort, startRedisServer, stopRedisServer } from '../packages/degradation/test/support/redis-server.js'
import { REDIS_URL, redisTestOptions } from './support/redis.js'

const opts = await redisTestOptions()
t.teardown(() => agent.destroy())

const TOKEN = 'integration-test-admin-token'
const auth = { authorization: `Bearer ${TOKEN}` }

async function startInstance(t: Test, client: Redis, prefix: string, logLines?: string[]) {
  const app = logLines === undefined
    ? Fastify()
    : Fastify({ logger: { level: 'warn', stream: { write: (line: string) => logLines.push(line) } } })
  t.teardown(() => app.close())
  await app.register(degradation, {
    features: [
      { name: 'recommendations', offAtLevel: 1, fallback: [] },
      { name: 'search_suggestions', offAtLevel: 2, fallback: [] }
    ],
    redis: { client, prefix, refreshIntervalMs: 500 },
    admin: { token: TOKEN },
    evaluateIntervalMs: 50
  })
  app.get('/page', async (request) => ({
    recommendations: request.feature('recommendations'),
    search_suggestions: request.feature('search_suggestions')
  }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return { app, port }
}

function client(t: Test, url: string): Redis {
  const redis = new Redis(url, { maxRetriesPerRequest: 2, retryStrategy: (times) => Math.min(times * 50, 200) })
  // An application's own client: its connection errors are the application's to log.
  redis.on('error', () => {})
  t.teardown(() => redis.disconnect())
  return redis
}

t.test('an override set on one instance reaches another', opts, async (t) => {
  const prefix = `test-degradation-${randomBytes(6).toString('hex')}:`
  const a = await startInstance(t, client(t, REDIS_URL), prefix)
  const b = await startInstance(t, client(t, REDIS_URL), prefix)
  t.teardown(async () => {
    const cleanup = new Redis(REDIS_URL)
    await cleanup.del(`${prefix}overrides`)
    cleanup.disconnect()
  })
  await sleep(100)
  const put = await fetchJson(a.port, 'PUT', { level: 2, reason: 'integration' })
  t.equal(put.status, 200)
  await waitFor('instance B at level 2', () => b.app.degradation.level === 2, 3000)
  t.match(b.app.degradation.status(), { overrides: { level: { level: 2, reason: 'integration' } }, redisErrors: 0 })
  const page = await get(b.port, '/page')
  t.same(JSON.parse(page.body), { recommendations: false, search_suggestions: false })
  t.equal(page.headers['spillway-degraded'], 'recommendations, search_suggestions')

  b.app.degradation.overrides.pin('recommendations', true)
  await waitFor('instance A sees B\'s pin', () => a.app.degradation.isOn('recommendations'), 3000)
  const late = await startInstance(t, client(t, REDIS_URL), prefix)
  await waitFor('a late instance reads the state', () => late.app.degradation.level === 2, 3000)
  t.equal(late.app.degradation.isOn('recommendations'), true)
})

t.test('Redis stopped: both instances keep their last state, requests see no errors; sharing resumes after', opts, async (t) => {
  const port = await freePort()
  await startRedisServer(port)
  t.teardown(() => stopRedisServer(port))
  const url = `redis://127.0.0.1:${port}`
  const prefix = `test-degradation-outage-${randomBytes(6).toString('hex')}:`
  const logA: string[] = []
  const logB: string[] = []
  const a = await startInstance(t, client(t, url), prefix, logA)
  const b = await startInstance(t, client(t, url), prefix, logB)
  await sleep(100)
  a.app.degradation.overrides.forceLevel(1)
  a.app.degradation.overrides.pin('search_suggestions', false)
  await waitFor('B adopts A\'s overrides', () => b.app.degradation.level === 1 && !b.app.degradation.isOn('search_suggestions'), 3000)

  await stopRedisServer(port)
  await sleep(1000)
  for (const [name, instance] of [['A', a], ['B', b]] as const) {
    t.equal(instance.app.degradation.level, 1, `${name} keeps its level`)
    const page = await get(instance.port, '/page')
    t.equal(page.status, 200, `${name} answers`)
    t.same(JSON.parse(page.body), { recommendations: false, search_suggestions: false }, `${name} keeps its state`)
  }
  // A decision taken during the outage applies where it was taken, and nothing throws.
  const put = await fetchJson(b.port, 'PUT', { level: 0, pins: { search_suggestions: null } })
  t.equal(put.status, 200, 'the admin route works without Redis')
  t.equal(b.app.degradation.level, 0)
  t.equal(a.app.degradation.level, 1, 'A cannot know yet')
  await sleep(500)
  t.ok((b.app.degradation.status().redisErrors ?? 0) > 0, 'errors are counted')
  for (const [name, lines] of [['A', logA], ['B', logB]] as const) {
    const messages = lines.map((line) => (JSON.parse(line) as { msg: string }).msg)
    t.same(messages.filter((m) => /Redis/.test(m)), ['spillway degradation: Redis unavailable, keeping the last known overrides'],
      `${name} logged the outage once`)
    t.notOk(messages.some((m) => /request errored|Internal Server Error/i.test(m)), `${name} logged no request error`)
  }

  await startRedisServer(port)
  // B's write was queued or failed; its next decision (or A's refresh of the key) reconciles.
  b.app.degradation.overrides.forceLevel(2)
  await waitFor('A adopts B\'s decision once Redis is back', () => a.app.degradation.level === 2, 5000)
  t.equal((await get(a.port, '/page')).status, 200)
})

async function fetchJson(port: number, method: string, body: unknown): Promise<{ status: number, json: unknown }> {
  const response = await fetch(`http://127.0.0.1:${port}/_spillway/degradation`, {
    method,
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify(body)
  })
  return { status: response.status, json: await response.json() }
}
