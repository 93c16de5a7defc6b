/**
 * Degradation's request protocol, over real HTTP on 127.0.0.1, against the Fastify plugin and the
 * Express middleware alike: the same cases and the same assertions for both mounts, each on a
 * fresh server, the level forced through overrides.
 */
import t, { type Test } from 'tap'
import degradation from '../packages/degradation/src/index.js'
import { Fastify } from '../packages/degradation/test/support/http.js'
import { degradation as expressDegradation } from '../packages/express/src/degradation.js'
import { express } from '../packages/express/test/helpers/express.js'
import { serve } from '../packages/express/test/helpers/serve.js'

const PROBLEM = 'application/problem+json; charset=utf-8'
// Retry-After of a 503: dwellMs (4 s) jittered ±50%, in whole seconds.
const DWELL_MS = 4000
const RETRY_AFTER = { min: 2, max: 6 }

const options = {
  features: [
    { name: 'value', offAtLevel: 1, fallback: { items: [] } },
    { name: 'function', offAtLevel: 1, fallback: () => ({ items: ['stale'] }) },
    { name: 'async', offAtLevel: 1, fallback: async () => ({ items: ['later'] }) },
    { name: 'throws', offAtLevel: 1, fallback: () => { throw new Error('boom') } },
    { name: 'none', offAtLevel: 1 },
    { name: 'recommendations', offAtLevel: 1, fallback: [] },
    { name: 'search', offAtLevel: 1, fallback: ['popular'] },
    { name: 'analytics', offAtLevel: 2 }
  ],
  dwellMs: DWELL_MS,
  evaluateIntervalMs: 0
}
const GATED = ['value', 'function', 'async', 'throws', 'none']

/** What a handler asks, the same in both frameworks. */
interface Asker {
  feature(name: string): boolean
  degrade<T>(name: string, full: () => T | Promise<T>, fallback?: T | (() => T | Promise<T>)): Promise<T | null>
}
async function page(request: Asker) {
  return {
    recommendations: request.feature('recommendations'),
    search: await request.degrade('search', async () => ['full'], ['cached']),
    again: request.feature('recommendations'),
    analytics: request.feature('analytics')
  }
}

interface Mounted {
  base: string
  forceLevel(level: number): void
  /** How many times a gated route's own handler ran. */
  handled(): number
}

const mounts: Record<string, (t: Test) => Promise<Mounted>> = {
  async fastify(t) {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(degradation, options)
    let handled = 0
    for (const name of GATED) {
      app.get(`/${name}`, { config: { feature: name } }, async () => {
        handled++
        return { full: true }
      })
    }
    app.get('/page', async (request) => page(request))
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    return { base: `http://127.0.0.1:${port}`, forceLevel: (level) => app.degradation.overrides.forceLevel(level), handled: () => handled }
  },
  async express(t) {
    const app = express()
    const degrade = expressDegradation({ ...options, logger: { warn: () => {}, info: () => {} } })
    t.teardown(() => degrade.close())
    app.use(degrade)
    let handled = 0
    for (const name of GATED) {
      app.get(`/${name}`, degrade.gate(name), (_req, res) => {
        handled++
        res.json({ full: true })
      })
    }
    app.get('/page', async (req, res) => { res.json(await page(req)) })
    const base = await serve(t, app)
    return { base, forceLevel: (level) => degrade.degradation.overrides.forceLevel(level), handled: () => handled }
  }
}

async function get(base: string, path: string) {
  const response = await fetch(`${base}${path}`)
  const text = await response.text()
  return {
    status: response.status,
    type: response.headers.get('content-type'),
    degraded: response.headers.get('spillway-degraded'),
    retryAfter: response.headers.get('retry-after'),
    body: JSON.parse(text) as unknown
  }
}

for (const [framework, mount] of Object.entries(mounts)) {
  t.test(framework, async (t) => {
    t.test('a gated route runs its handler while its feature is on', async (t) => {
      const server = await mount(t)
      for (const name of GATED) {
        t.match(await get(server.base, `/${name}`), { status: 200, degraded: null, retryAfter: null, body: { full: true } }, name)
      }
      t.equal(server.handled(), GATED.length)
    })

    t.test('while off: the declared value, a function\'s result, an async function\'s, each named in the header', async (t) => {
      const server = await mount(t)
      server.forceLevel(1)
      const expected: Record<string, unknown> = { value: { items: [] }, function: { items: ['stale'] }, async: { items: ['later'] } }
      for (const [name, body] of Object.entries(expected)) {
        const answer = await get(server.base, `/${name}`)
        t.match(answer, { status: 200, type: /^application\/json/, degraded: name, retryAfter: null }, name)
        t.same(answer.body, body, name)
      }
      t.equal(server.handled(), 0, 'no gated handler ran')
    })

    t.test('a throwing fallback, or none, is a 503 problem+json with a jittered Retry-After', async (t) => {
      const server = await mount(t)
      server.forceLevel(1)
      for (const name of ['throws', 'none']) {
        const answer = await get(server.base, `/${name}`)
        t.match(answer, { status: 503, type: PROBLEM, degraded: name }, name)
        t.same(answer.body, { type: 'about:blank', title: 'Service Unavailable', status: 503, detail: `${name} is degraded and has no usable fallback` }, name)
      }
      const seconds = new Set<number>()
      for (let i = 0; i < 60; i++) seconds.add(Number((await get(server.base, '/none')).retryAfter))
      const values = [...seconds].sort()
      t.ok(values.every((s) => Number.isInteger(s) && s >= RETRY_AFTER.min && s <= RETRY_AFTER.max), `Retry-After in [${RETRY_AFTER.min}, ${RETRY_AFTER.max}]: ${values.join(', ')}`)
      t.ok(values.length >= 2, 'and spread')
      t.equal(server.handled(), 0)
    })

    t.test('feature() and degrade() in a handler; the header lists the features served by fallback, in order, once', async (t) => {
      const server = await mount(t)
      t.match(await get(server.base, '/page'), {
        status: 200, degraded: null, body: { recommendations: true, search: ['full'], again: true, analytics: true }
      })
      server.forceLevel(1)
      t.match(await get(server.base, '/page'), {
        status: 200, degraded: 'recommendations, search', body: { recommendations: false, search: ['cached'], again: false, analytics: true }
      })
      server.forceLevel(2)
      t.match(await get(server.base, '/page'), {
        status: 200, degraded: 'recommendations, search, analytics', body: { recommendations: false, search: ['cached'], again: false, analytics: false }
      })
    })
  })
}
