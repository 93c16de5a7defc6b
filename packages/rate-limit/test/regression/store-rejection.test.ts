/**
 * Guards: a store whose `take` rejects must not admit the request uncounted (both mounts once did
 * `decision.then(…, () => done())`). It is decided as the store fallback decides for a failed
 * store — `'open'` and `'local'` admit, `'closed'` refuses with 429 — and counted (allowed or
 * limited, plus a store error and a fallback decision); never a 5xx. In both frameworks, through
 * their real mounts: with a bare rejecting store, and with a rate-limiter-flexible store failing.
 */
import t, { type Test } from 'tap'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { express, type Request, type Response } from '../../../express/test/helpers/express.js'
import { serve } from '../../../express/test/helpers/serve.js'
import { expressMount, rateLimit } from '../../../express/src/rate-limit.js'
import { fastifyMount, spillwayRateLimit } from '../../src/plugin.js'
import { normalizeOptions } from '../../src/options.js'
import { RateLimiter } from '../../src/rate-limiter.js'
import { RateLimitProtocol, type RateLimitMount } from '../../src/request-protocol.js'
import { RateLimitStats, type RateLimitSnapshot } from '../../src/stats.js'
import type { BucketStore, FlexibleLimiter } from '../../src/policy.js'
import type { StoreErrorMode } from '../../src/store-fallback.js'

const rejecting: BucketStore = { take: () => Promise.reject(new Error('ECONNRESET')), close: async () => {} }
const failingFlexible: FlexibleLimiter = { points: 5, duration: 60, consume: () => Promise.reject(new Error('ECONNREFUSED')), reward: async () => ({}) }
const silent = { warn: () => {}, info: () => {} }

/** One GET against a fresh server; the status, Retry-After and the limiter's counters after it. */
type Served = (t: Test, onStoreError: StoreErrorMode) => Promise<{ status: number, retryAfter: string | undefined, stats: RateLimitSnapshot }>

/** The framework's real mount, run by the protocol over a limiter whose store rejects. */
function limiterOver<Req, Res, Next>(mount: RateLimitMount<Req, Res, Next>, onStoreError: StoreErrorMode) {
  const limiter = new RateLimiter(normalizeOptions<Req, Res>({ onStoreError }), rejecting, new RateLimitStats())
  return { limiter, protocol: new RateLimitProtocol(limiter, mount), route: limiter.prepare('*', limiter.options) }
}

const fastifyRejecting: Served = async (t, onStoreError) => {
  const { limiter, protocol, route } = limiterOver(fastifyMount, onStoreError)
  const app = Fastify()
  t.teardown(() => app.close())
  app.addHook('onRequest', (request: FastifyRequest, reply: FastifyReply, done) => { protocol.limit(route, request, reply, done) })
  app.get('/', async () => 'ok')
  const res = await app.inject('/')
  return { status: res.statusCode, retryAfter: res.headers['retry-after'] as string | undefined, stats: limiter.stats.snapshot() }
}

const fastifyFlexible: Served = async (t, onStoreError) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(spillwayRateLimit, { onStoreError, policies: [{ name: 'pg', limiter: failingFlexible }] })
  app.get('/', async () => 'ok')
  const res = await app.inject('/')
  return { status: res.statusCode, retryAfter: res.headers['retry-after'] as string | undefined, stats: app.rateLimit.stats() }
}

async function getOnce(t: Test, app: ReturnType<typeof express>) {
  app.get('/', (_req, res) => { res.send('ok') })
  const res = await fetch(await serve(t, app))
  await res.arrayBuffer()
  return { status: res.status, retryAfter: res.headers.get('retry-after') ?? undefined }
}

const expressRejecting: Served = async (t, onStoreError) => {
  const { limiter, protocol, route } = limiterOver(expressMount, onStoreError)
  const app = express()
  app.use((request: Request, response: Response, next) => { protocol.limit(route, request, response, next) })
  return { ...await getOnce(t, app), stats: limiter.stats.snapshot() }
}

const expressFlexible: Served = async (t, onStoreError) => {
  const limit = rateLimit({ onStoreError, logger: silent, policies: [{ name: 'pg', limiter: failingFlexible }] })
  t.teardown(() => limit.close())
  const app = express()
  app.use(limit)
  return { ...await getOnce(t, app), stats: limit.stats() }
}

const cases: Array<[string, Served]> = [
  ['Fastify, a store that rejects', fastifyRejecting],
  ['Fastify, a rate-limiter-flexible store failing', fastifyFlexible],
  ['Express, a store that rejects', expressRejecting],
  ['Express, a rate-limiter-flexible store failing', expressFlexible]
]

for (const [name, served] of cases) {
  t.test(name, async (t) => {
    for (const mode of ['open', 'local'] as const) {
      const { status, stats } = await served(t, mode)
      t.equal(status, 200, `${mode}: admitted`)
      t.match(stats, { allowed: 1, limited: 0, storeErrors: 1, fallbackDecisions: 1 }, `${mode}: counted as allowed, a store error and a fallback decision`)
    }
    const { status, retryAfter, stats } = await served(t, 'closed')
    t.equal(status, 429, 'closed: refused, not a 5xx')
    t.equal(retryAfter, '1', 'until the next probe would be due (probeIntervalMs 1000)')
    t.match(stats, { allowed: 0, limited: 1, storeErrors: 1, fallbackDecisions: 1 })
  })
}
