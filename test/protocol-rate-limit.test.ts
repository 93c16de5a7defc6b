/**
 * The rate limiter's request protocol, run over real HTTP on 127.0.0.1 against both mounts alike:
 * the Fastify plugin and the Express middleware, each on a fresh server. The same cases, the same
 * assertions: a mount only mounts.
 */
import { Agent, request as httpRequest, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { PROBLEM_CONTENT_TYPE, sharedMeter, type ServerMeter } from '@spillway/latency-window/core'
import { spillwayRateLimit, QUOTA_EXCEEDED_TYPE, type RateLimitSnapshot } from '../packages/rate-limit/src/index.js'
import type { RateLimitOptions, RouteRateLimitOptions } from '../packages/rate-limit/src/core.js'
import { Fastify, meterFastify } from '../packages/rate-limit/test/support/fastify.js'
import { rateLimit } from '../packages/express/src/rate-limit.js'
import { measureRequests } from '../packages/express/src/request-meter.js'
import { express, type NextFunction, type Request, type Response } from '../packages/express/test/helpers/express.js'
import { serve } from '../packages/express/test/helpers/serve.js'

/** What the options' functions read: Fastify's and Express's requests both have it. */
interface AnyRequest { headers: IncomingHttpHeaders, ip?: string | undefined }
type Options = Omit<RateLimitOptions<AnyRequest, unknown>, 'hook'>
interface Setup {
  /** Routes answering 'ok'; those with `config` are limited with it (`config.rateLimit`, `limiter.route()`). */
  routes?: Array<{ path: string, config?: RouteRateLimitOptions<AnyRequest> | true }>
  /** A mount of the shared meter in front, timing every request. */
  metered?: boolean
}
interface Mounted { base: string, stats(): RateLimitSnapshot, meter(): ServerMeter, close(): Promise<void> }
type Mount = (t: Test, options: Options, setup?: Setup) => Promise<Mounted>

const ROOT: NonNullable<Setup['routes']> = [{ path: '/' }]
const silent = { warn: () => {}, info: () => {} }

const fastifyPlugin: Mount = async (t, options, { routes = ROOT, metered = false } = {}) => {
  const app = Fastify()
  t.teardown(() => app.close())
  if (metered) meterFastify(app, 'test')
  await app.register(spillwayRateLimit, options)
  for (const { path, config } of routes) app.get(path, config === undefined ? {} : { config: { rateLimit: config } }, async () => 'ok')
  await app.listen({ port: 0, host: '127.0.0.1' })
  return {
    base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`,
    stats: () => app.rateLimit.stats(),
    meter: () => sharedMeter(app.server),
    close: () => app.close()
  }
}

const expressMiddleware: Mount = async (t, options, { routes = ROOT, metered = false } = {}) => {
  const limit = rateLimit({ logger: silent, ...options })
  const app = express()
  t.teardown(() => limit.close())
  if (metered) {
    const measure = measureRequests()
    t.teardown(() => measure.close())
    app.use(measure)
  }
  app.use(limit)
  for (const { path, config } of routes) {
    if (config === undefined) app.get(path, (_req, res) => { res.send('ok') })
    else app.get(path, limit.route(config), (_req, res) => { res.send('ok') })
  }
  app.use((error: { code?: string, statusCode?: number }, _req: Request, res: Response, _next: NextFunction) => {
    res.status(error.statusCode ?? 500).json({ code: error.code })
  })
  const base = await serve(t, app)
  return { base, stats: () => limit.stats(), meter: () => sharedMeter(app), close: () => limit.close() }
}

const MOUNTS: Record<string, Mount> = { 'Fastify plugin': fastifyPlugin, 'Express middleware': expressMiddleware }
const still = () => 0

async function get(base: string, path = '/', headers: Record<string, string> = {}) {
  const response = await fetch(`${base}${path}`, { headers })
  const text = await response.text()
  return { status: response.status, header: (name: string) => response.headers.get(name), json: () => JSON.parse(text) as Record<string, unknown> }
}

/** One GET over `agent` (whose one socket it reuses), timed to the end of its body. */
function timedGet(agent: Agent, url: string): Promise<{ status: number, ms: number, body: string }> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    httpRequest(url, { agent }, (response) => {
      let body = ''
      response.setEncoding('utf8').on('data', (chunk: string) => { body += chunk })
      response.on('end', () => { resolve({ status: response.statusCode ?? 0, ms: performance.now() - started, body }) })
    }).on('error', reject).end()
  })
}

function oneConnection(t: Test): Agent {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  return agent
}

for (const [name, mount] of Object.entries(MOUNTS)) {
  t.test(name, async (t) => {
    t.test('allowed, with the draft headers', async (t) => {
      const { base, stats } = await mount(t, { capacity: 3, refillPerSecond: 1, now: still })
      const res = await get(base)
      t.equal(res.status, 200)
      t.equal(res.header('ratelimit-policy'), '"default";q=3;w=3')
      t.equal(res.header('ratelimit'), '"default";r=2;t=1')
      t.equal(res.header('retry-after'), null)
      t.match(stats(), { allowed: 1, limited: 0 })
    })

    t.test('refused: 429, Retry-After and the problem details', async (t) => {
      const { base, stats } = await mount(t, { capacity: 1, refillPerSecond: 0.25, now: still })
      await get(base)
      const res = await get(base)
      t.equal(res.status, 429)
      t.equal(res.header('retry-after'), '4')
      t.equal(res.header('ratelimit'), '"default";r=0;t=4')
      t.equal(res.header('content-type'), PROBLEM_CONTENT_TYPE)
      t.same(res.json(), {
        type: QUOTA_EXCEEDED_TYPE, title: 'Too Many Requests', status: 429,
        detail: 'Rate limit exceeded; retry in 4 s.', 'violated-policies': ['default']
      })
      t.match(stats(), { allowed: 1, limited: 1 })
    })

    t.test('allow-listed keys pass uncounted and without headers', async (t) => {
      const { base, stats } = await mount(t, {
        capacity: 1, now: still, allowList: ['internal'], key: (request) => String(request.headers['x-api-key'] ?? request.ip)
      })
      for (let i = 0; i < 3; i++) {
        const res = await get(base, '/', { 'x-api-key': 'internal' })
        t.equal(res.status, 200)
        t.equal(res.header('ratelimit'), null)
      }
      t.equal((await get(base, '/', { 'x-api-key': 'k1' })).status, 200)
      t.equal((await get(base, '/', { 'x-api-key': 'k1' })).status, 429, 'other keys are limited')
      t.match(stats(), { allowed: 1, limited: 1 })
    })

    t.test('cost: a function of the request; nonsense is a 500 SPILLWAY_RATE_LIMIT_COST', async (t) => {
      const { base, stats } = await mount(t, { capacity: 5, now: still, cost: (request) => Number(request.headers['x-units'] ?? 1) })
      t.equal((await get(base, '/', { 'x-units': '3' })).header('ratelimit'), '"default";r=2;t=3')
      t.equal((await get(base, '/', { 'x-units': '3' })).status, 429, 'needs 3, has 2')
      t.equal((await get(base, '/', { 'x-units': '2' })).status, 200)
      const bad = await get(base, '/', { 'x-units': 'lots' })
      t.equal(bad.status, 500)
      t.equal(bad.json()['code'], 'SPILLWAY_RATE_LIMIT_COST')
      t.match(stats(), { allowed: 2, limited: 1 })
    })

    t.test('per-route settings: own limits, the limiter\'s buckets, unlimited', async (t) => {
      const { base } = await mount(t, { global: false, capacity: 10, refillPerSecond: 2, now: still }, {
        routes: [{ path: '/login', config: { capacity: 1, refillPerSecond: 1 / 60 } }, { path: '/plain', config: true }, { path: '/free' }]
      })
      t.equal((await get(base, '/login')).header('ratelimit-policy'), '"default";q=1;w=60')
      const refused = await get(base, '/login')
      t.equal(refused.status, 429)
      t.equal(refused.header('retry-after'), '60')
      t.equal((await get(base, '/plain')).header('ratelimit'), '"default";r=9;t=1', 'the limiter\'s bucket, untouched by /login')
      const free = await get(base, '/free')
      t.equal(free.status, 200)
      t.equal(free.header('ratelimit'), null)
    })

    t.test('a throwing onLimited is the framework\'s error; the refusal is counted', async (t) => {
      const { base, stats } = await mount(t, { capacity: 1, now: still, onLimited: () => { throw new Error('onLimited broke') } })
      await get(base)
      t.equal((await get(base)).status, 500)
      t.match(stats(), { allowed: 1, limited: 1 })
      t.equal((await get(base)).status, 500, 'the server still answers')
    })

    t.test('a store that rejects: decided by onStoreError, counted, never a 5xx', async (t) => {
      const failing = { points: 5, duration: 60, consume: () => Promise.reject(new Error('ECONNREFUSED')), reward: async () => ({}) }
      const open = await mount(t, { onStoreError: 'open', policies: [{ name: 'pg', limiter: failing }] })
      const admitted = await get(open.base)
      t.equal(admitted.status, 200)
      t.equal(admitted.header('ratelimit'), null, 'no figures to report')
      t.match(open.stats(), { allowed: 1, storeErrors: 1, fallbackDecisions: 1 })
      const closed = await mount(t, { onStoreError: 'closed', probeIntervalMs: 2000, policies: [{ name: 'pg', limiter: failing }] })
      const refused = await get(closed.base)
      t.equal(refused.status, 429)
      t.equal(refused.header('retry-after'), '2')
      t.match(refused.json(), { status: 429, 'violated-policies': [] })
      t.match(closed.stats(), { limited: 1, storeErrors: 1, fallbackDecisions: 1 })
    })

    t.test('the limiter times nothing itself; its refusals stay out of the latency of the meter that does', async (t) => {
      const alone = await mount(t, { capacity: 1, now: still })
      await get(alone.base)
      await get(alone.base)
      t.equal(alone.meter().measuredBy, undefined, 'no meter claimed by the rate limiter')
      const metered = await mount(t, { capacity: 1, now: still }, { metered: true })
      for (let i = 0; i < 3; i++) await get(metered.base)
      const meter = metered.meter()
      for (let i = 0; i < 50 && meter.inFlight.current > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10))
      t.not(meter.measuredBy, undefined, 'the meter mount in front times')
      t.equal(meter.latency.count, 1, 'the admitted request only')
      t.match(metered.stats(), { allowed: 1, limited: 2 })
    })

    t.test('a client that keeps coming back after its 429 is answered more slowly; its first 429s are not', async (t) => {
      const { base, stats } = await mount(t, {
        capacity: 1, refillPerSecond: 0.01, now: still, pacing: { afterRefusals: 2, afterMs: 0, minDelayMs: 300, maxDelayMs: 300 }
      })
      const connection = oneConnection(t)
      t.equal((await timedGet(connection, `${base}/`)).status, 200)
      for (let i = 0; i < 2; i++) {
        const refused = await timedGet(connection, `${base}/`)
        t.equal(refused.status, 429)
        t.ok(refused.ms < 200, `429 number ${i + 1} at once (${refused.ms.toFixed(0)} ms)`)
      }
      const held = await timedGet(connection, `${base}/`)
      t.equal(held.status, 429)
      t.ok(held.ms >= 290, `the third in a row held (${held.ms.toFixed(0)} ms)`)
      t.equal((JSON.parse(held.body) as { status: number }).status, 429, 'with its problem details')
      t.match(stats(), { allowed: 1, limited: 3 })
    })

    t.test('pacing: false answers every 429 at once', async (t) => {
      const { base } = await mount(t, { capacity: 1, refillPerSecond: 0.01, now: still, pacing: false })
      const connection = oneConnection(t)
      await timedGet(connection, `${base}/`)
      for (let i = 0; i < 6; i++) {
        const refused = await timedGet(connection, `${base}/`)
        t.equal(refused.status, 429)
        t.ok(refused.ms < 200, `429 number ${i + 1} at once (${refused.ms.toFixed(0)} ms)`)
      }
    })

    t.test('closing sends the 429s held', async (t) => {
      const { base, close } = await mount(t, {
        capacity: 1, refillPerSecond: 0.01, now: still, pacing: { afterRefusals: 0, afterMs: 0, minDelayMs: 20_000 }
      })
      const connection = oneConnection(t)
      await timedGet(connection, `${base}/`)
      const pending = timedGet(connection, `${base}/`)
      await new Promise((resolve) => setTimeout(resolve, 100))
      const closed = close()
      const answer = await pending
      t.equal(answer.status, 429)
      t.ok(answer.ms < 2000, `answered on close (${answer.ms.toFixed(0)} ms), not after 20 s`)
      await closed
    })
  })
}
