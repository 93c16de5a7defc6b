/**
 * Between protections, a request refused by one is charged by none: a shed request spends no rate
 * limit tokens, and a rate-limited request holds no load-shedding slot and does not count as
 * admitted. In Fastify whatever order the plugins were registered in, with the shedder's front
 * door or without; in Express in the documented order (the shedder mounted before the limiter).
 * Over real HTTP on loopback.
 */
import { Agent, get } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import type { LoadSheddingState } from '../packages/load-shedding/src/index.js'
import { loadShedding as fastifyLoadShedding, type LoadSheddingOptions } from '../packages/load-shedding/src/index.js'
import { spillwayRateLimit } from '../packages/rate-limit/src/index.js'
import { Fastify } from '../packages/load-shedding/test/support/fastify.js'
import { loadShedding as expressLoadShedding } from '../packages/express/src/load-shedding.js'
import { rateLimit as expressRateLimit } from '../packages/express/src/rate-limit.js'
import { express } from '../packages/express/test/helpers/express.js'
import { serve } from '../packages/express/test/helpers/serve.js'

const DEADLINE = 'x-deadline'
/** Refuses only what the test asks it to: requests whose deadline has passed. */
const SHEDDING = {
  deadlineHeader: DEADLINE, eventLoop: false, intervalMs: 60_000, gradient2: { initialLimit: 1000 }, pacing: false
} as const satisfies LoadSheddingOptions
/** Two requests, then 429 for the rest of the test. */
const LIMIT = { capacity: 2, refillPerSecond: 0.001, pacing: false as const }
const silent = { warn: () => {}, info: () => {} }

interface Mounted {
  base: string
  /** The shedder's state: admitted counts and requests in flight. */
  state(): LoadSheddingState
}

async function fastifyApp(t: Test, order: 'rate limit first' | 'load shedding first', front: boolean): Promise<Mounted> {
  const app = Fastify()
  t.teardown(() => app.close())
  const shedding = fastifyLoadShedding
  const options = { ...SHEDDING, ...(front ? { front: true } : {}) }
  if (order === 'rate limit first') {
    await app.register(spillwayRateLimit, LIMIT)
    await app.register(shedding, options)
  } else {
    await app.register(shedding, options)
    await app.register(spillwayRateLimit, LIMIT)
  }
  app.get('/', async () => 'ok')
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, state: () => app.loadShedding.state }
}

async function expressApp(t: Test): Promise<Mounted> {
  const shed = expressLoadShedding(SHEDDING)
  const limit = expressRateLimit({ ...LIMIT, logger: silent })
  t.teardown(async () => { shed.close(); await limit.close() })
  const app = express()
  app.use(shed)
  app.use(limit)
  app.get('/', (_req, res) => { res.send('ok') })
  return { base: await serve(t, app), state: () => shed.state }
}

async function statuses(base: string, count: number, headers: Record<string, string> = {}): Promise<number[]> {
  const answers: number[] = []
  for (let i = 0; i < count; i++) {
    const response = await fetch(base, { headers })
    await response.arrayBuffer()
    answers.push(response.status)
  }
  return answers
}

async function checkOrder(t: Test, mounted: Mounted): Promise<void> {
  const expired = { [DEADLINE]: String(Date.now() - 60_000) }
  t.same(await statuses(mounted.base, 3, expired), [503, 503, 503], 'shed: past their deadline')
  t.same(await statuses(mounted.base, 3), [200, 200, 429], 'the shed requests spent none of the two tokens')
  const state = mounted.state()
  t.equal(state.admitted.normal, 2, 'the rate-limited request does not count as admitted')
  t.equal(state.inFlight, 0, 'and holds no slot')
  t.same(await statuses(mounted.base, 2), [429, 429])
  t.equal(mounted.state().admitted.normal, 2, 'nor do the ones after it')
  t.equal(mounted.state().inFlight, 0)
}

for (const order of ['rate limit first', 'load shedding first'] as const) {
  for (const front of [false, true]) {
    t.test(`Fastify, ${order}${front ? ', front door on' : ''}: a request refused by one protection is charged by none`, async (t) => {
      await checkOrder(t, await fastifyApp(t, order, front))
    })
  }
}

t.test('Express, load shedding mounted before the rate limiter: a request refused by one is charged by none', async (t) => {
  await checkOrder(t, await expressApp(t))
})

t.test('a client that ignores Retry-After is still paced with the shedder admitting its requests first', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(fastifyLoadShedding, { eventLoop: false, intervalMs: 60_000, gradient2: { initialLimit: 1000 } })
  await app.register(spillwayRateLimit, { capacity: 1, refillPerSecond: 0.001 })
  app.get('/', async () => 'ok')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  // One connection (fetch spreads its requests over two): the pacer counts refusals per connection.
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const status = (): Promise<number> => new Promise((resolve, reject) => {
    get(base, { agent }, (response) => { response.resume().on('end', () => resolve(response.statusCode ?? 0)) }).on('error', reject)
  })
  const first: number[] = []
  for (let i = 0; i < 4; i++) first.push(await status())
  t.same(first, [200, 429, 429, 429], 'one token, then refusals on the same connection')
  const started = performance.now()
  t.equal(await status(), 429)
  // The shedder admitted each of these before the limiter refused it: were that an answer, the
  // connection's run of refusals would start over every time and never be held.
  t.ok(performance.now() - started >= 200, 'the fourth refusal in a row is held (at least 250 ms)')
})
