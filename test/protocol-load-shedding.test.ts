/**
 * The load shedder's request protocol, run over real HTTP against every mount alike: the Fastify
 * hook, the Fastify front door, the Express middleware and the Express front door. The same cases,
 * the same assertions: a mount only mounts.
 */
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { loadShedding as fastifyLoadShedding, type LoadSheddingOptions } from '../packages/load-shedding/src/index.js'
import { Fastify } from '../packages/load-shedding/test/support/fastify.js'
import { loadShedding as expressLoadShedding } from '../packages/express/src/load-shedding.js'
import { express } from '../packages/express/test/helpers/express.js'

/** What the cases read of a mount's limiter (the Fastify and the Express one, each from its own build). */
interface Limiter {
  readonly state: { inFlight: number, admitted: { normal: number }, shed: { normal: { threshold: number, deadline: number, limit: number } } }
  readonly cohorts: number
  readonly admission: { readonly arrivals: Uint32Array, readonly admitted: number, update(elapsedMs: number, overloaded: boolean, severity: number): number }
  readonly limiter: { acquire(): void }
  release(rttMs: number, dropped: boolean): void
}
interface Mounted { base: string, limiter: Limiter, served: () => number }
/** The options both mounts take alike (no function of the framework's request). */
type Options = Omit<LoadSheddingOptions, 'cohortKey' | 'priority' | 'front' | 'bypass'> & { bypass?: string[] }
type Mount = (t: Test, options: Options) => Promise<Mounted>

async function listen(t: Test, server: Server): Promise<string> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

function fastifyMount(front: boolean): Mount {
  return async (t, options) => {
    const app = Fastify()
    t.teardown(() => app.close())
    let served = 0
    await app.register(fastifyLoadShedding, { ...options, front })
    app.get('/work', async () => { served++; return { ok: true } })
    app.get('/health', async () => { served++; return { ok: true } })
    await app.listen({ port: 0, host: '127.0.0.1' })
    return { base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, limiter: app.loadShedding.limiter, served: () => served }
  }
}

function expressMount(front: boolean): Mount {
  return async (t, options) => {
    const shed = expressLoadShedding(options)
    t.teardown(() => shed.close())
    const app = express()
    let served = 0
    if (!front) app.use(shed)
    app.get('/work', (_req, res) => { served++; res.json({ ok: true }) })
    app.get('/health', (_req, res) => { served++; res.json({ ok: true }) })
    const base = await listen(t, createServer(front ? shed.front(app) : app))
    return { base, limiter: shed.limiter, served: () => served }
  }
}

const MOUNTS: Record<string, Mount> = {
  'Fastify hook': fastifyMount(false),
  'Fastify front door': fastifyMount(true),
  'Express middleware': expressMount(false),
  'Express front door': expressMount(true)
}

/** Moves the threshold down to `critical` only, as a deep overload would. */
function overload(limiter: Limiter): void {
  for (let i = 0; i < 10; i++) {
    limiter.admission.arrivals.fill(100)
    limiter.admission.update(100, true, 100)
  }
  if (limiter.admission.admitted !== limiter.cohorts) throw new Error('the threshold did not come down to critical')
}

const BASE: Options = { eventLoop: false, retryAfterMs: { min: 2000, max: 2000 } }

for (const [name, mount] of Object.entries(MOUNTS)) {
  t.test(name, async (t) => {
    t.test('admits while calm and releases the slot when the response closes', async (t) => {
      const { base, limiter } = await mount(t, BASE)
      const response = await fetch(`${base}/work`)
      t.equal(response.status, 200)
      t.same(await response.json(), { ok: true })
      await new Promise((resolve) => setImmediate(resolve))
      t.equal(limiter.state.admitted.normal, 1)
      t.equal(limiter.state.inFlight, 0, 'released')
    })

    t.test('refuses with a 503, a jittered Retry-After and the problem+json body of its reason', async (t) => {
      const { base, limiter, served } = await mount(t, BASE)
      overload(limiter)
      const response = await fetch(`${base}/work`)
      t.equal(response.status, 503)
      t.equal(response.headers.get('content-type'), 'application/problem+json; charset=utf-8')
      const retryAfter = Number(response.headers.get('retry-after'))
      t.ok(retryAfter >= 1 && retryAfter <= 3, `Retry-After ${retryAfter} within 2 s ±50%`)
      const body = await response.json() as Record<string, unknown>
      t.same(body, {
        type: 'about:blank',
        title: 'Service Unavailable',
        status: 503,
        detail: 'The server is overloaded and shed this request; retry after the delay in Retry-After.',
        reason: 'threshold'
      })
      t.equal(served(), 0, 'the handler never ran')
      t.equal(limiter.state.shed.normal.threshold, 1, 'counted once')
      t.equal(limiter.state.inFlight, 0, 'a refusal holds no slot')
    })

    t.test('a request past its deadline is refused for it', async (t) => {
      const { base, limiter } = await mount(t, { ...BASE, deadlineHeader: 'x-deadline' })
      const response = await fetch(`${base}/work`, { headers: { 'x-deadline': String(Date.now() - 1000) } })
      t.equal(response.status, 503)
      t.equal((await response.json() as { reason: string }).reason, 'deadline')
      t.equal(limiter.state.shed.normal.deadline, 1)
      const fresh = await fetch(`${base}/work`, { headers: { 'x-deadline': String(Date.now() + 60_000) } })
      t.equal(fresh.status, 200, 'one still in time goes on')
      await fresh.arrayBuffer()
    })

    t.test('a bypassed route is never shed; a trusted priority header is honoured', async (t) => {
      const { base, limiter } = await mount(t, { ...BASE, bypass: ['/health'], priorityHeader: 'x-priority' })
      overload(limiter)
      const health = await fetch(`${base}/health`)
      t.equal(health.status, 200)
      await health.arrayBuffer()
      const critical = await fetch(`${base}/work`, { headers: { 'x-priority': 'critical' } })
      t.equal(critical.status, 200, 'critical is never cut by the threshold')
      await critical.arrayBuffer()
      const low = await fetch(`${base}/work`, { headers: { 'x-priority': 'low' } })
      t.equal(low.status, 503)
      await low.arrayBuffer()
    })

    t.test('shadow mode refuses nothing and counts what it would have refused', async (t) => {
      const { base, limiter, served } = await mount(t, { ...BASE, mode: 'shadow' })
      overload(limiter)
      const response = await fetch(`${base}/work`)
      t.equal(response.status, 200)
      await response.arrayBuffer()
      await new Promise((resolve) => setImmediate(resolve))
      t.equal(served(), 1)
      t.equal(limiter.state.shed.normal.threshold, 1)
      t.equal(limiter.state.inFlight, 0, 'its slot was released too')
    })

    t.test('the concurrency limit refuses past its share, and a released slot admits again', async (t) => {
      const { base, limiter } = await mount(t, { ...BASE, algorithm: 'aimd', aimd: { initialLimit: 1, minLimit: 1 } })
      limiter.limiter.acquire()
      const response = await fetch(`${base}/work`)
      t.equal(response.status, 503)
      t.equal((await response.json() as { reason: string }).reason, 'limit')
      limiter.release(1, false)
      const again = await fetch(`${base}/work`)
      t.equal(again.status, 200)
      await again.arrayBuffer()
    })
  })
}
