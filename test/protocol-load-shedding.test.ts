/**
 * The load shedder's request protocol, run over real HTTP against every mount alike: the Fastify
 * hook, the Fastify front door, the Express middleware and the Express front door. The same cases,
 * the same assertions: a mount only mounts.
 */
import { once } from 'node:events'
import { Agent, createServer, request as httpRequest, type Server } from 'node:http'
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
interface Mounted { base: string, limiter: Limiter, served: () => number, close: () => Promise<void> }
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
    return {
      base: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`, limiter: app.loadShedding.limiter, served: () => served,
      close: () => app.close()
    }
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
    const server = createServer(front ? shed.front(app) : app)
    const base = await listen(t, server)
    return {
      base, limiter: shed.limiter, served: () => served,
      close: async () => {
        shed.close()
        await new Promise<void>((resolve) => server.close(() => resolve()))
      }
    }
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

interface Answer { status: number, ms: number }

/** One GET over `agent` (whose sockets it reuses), timed to the end of its body. */
function get(agent: Agent, url: string, headers: Record<string, string> = {}): Promise<Answer> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    httpRequest(url, { agent, headers }, (response) => {
      response.resume()
      response.on('end', () => { resolve({ status: response.statusCode ?? 0, ms: performance.now() - started }) })
    }).on('error', reject).end()
  })
}

/** A keep-alive client pool of `sockets` connections, destroyed at the end of the test. */
function pool(t: Test, sockets: number): Agent {
  const agent = new Agent({ keepAlive: true, maxSockets: sockets })
  t.teardown(() => agent.destroy())
  return agent
}

const PACED = { afterRefusals: 2, afterMs: 0, minDelayMs: 300, maxDelayMs: 300 }

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

    t.test('a connection refused again and again is answered after a delay; its first refusals are not', async (t) => {
      const { base, limiter } = await mount(t, { ...BASE, pacing: PACED, priorityHeader: 'x-priority' })
      overload(limiter)
      const connection = pool(t, 1)
      const first = [await get(connection, `${base}/work`), await get(connection, `${base}/work`)]
      for (const answer of first) {
        t.equal(answer.status, 503)
        t.ok(answer.ms < 200, `a first refusal at once (${answer.ms.toFixed(0)} ms)`)
      }
      const held = await get(connection, `${base}/work`)
      t.equal(held.status, 503)
      t.ok(held.ms >= 290, `the third in a row held (${held.ms.toFixed(0)} ms)`)
      const admitted = await get(connection, `${base}/work`, { 'x-priority': 'critical' })
      t.equal(admitted.status, 200)
      t.ok(admitted.ms < 200, 'an admissible request is not held')
      const after = await get(connection, `${base}/work`)
      t.ok(after.ms < 200, `the admitted request ended the run (${after.ms.toFixed(0)} ms)`)
    })

    t.test('pacing: false answers every refusal at once', async (t) => {
      const { base, limiter } = await mount(t, { ...BASE, pacing: false })
      overload(limiter)
      const connection = pool(t, 1)
      for (let i = 0; i < 6; i++) {
        const answer = await get(connection, `${base}/work`)
        t.equal(answer.status, 503)
        t.ok(answer.ms < 200, `refusal ${i + 1} at once (${answer.ms.toFixed(0)} ms)`)
      }
    })

    t.test('closing sends the refusals held', async (t) => {
      const { base, limiter, close } = await mount(t, { ...BASE, pacing: { afterRefusals: 0, afterMs: 0, minDelayMs: 20_000 } })
      overload(limiter)
      const connection = pool(t, 1)
      const pending = get(connection, `${base}/work`)
      await new Promise((resolve) => setTimeout(resolve, 100))
      const closed = close()
      const answer = await pending
      t.equal(answer.status, 503)
      t.ok(answer.ms < 2000, `answered when the server closed (${answer.ms.toFixed(0)} ms), not after 20 s`)
      await closed
    })

    /** Eight callers, three requests in ten admissible, through `agent`: a proxy's or a client pool's upstream connections under overload. */
    async function sharedPool(agent: Agent, base: string): Promise<{ answers: Answer[], admittedMs: number[] }> {
      const answers: Answer[] = []
      const until = performance.now() + 1500
      await Promise.all(Array.from({ length: 8 }, async (_, caller) => {
        for (let i = 0; performance.now() < until; i++) {
          const critical = (i + caller) % 10 < 3
          answers.push(await get(agent, `${base}/work`, critical ? { 'x-priority': 'critical' } : {}))
        }
      }))
      const admittedMs = answers.filter((a) => a.status === 200).map((a) => a.ms).sort((a, b) => a - b)
      return { answers, admittedMs }
    }
    const p99 = (sorted: number[]): number => sorted[Math.floor(0.99 * (sorted.length - 1))] ?? 0

    t.test('a client pool that opens connections as it needs them: admissible requests are not delayed by held refusals', async (t) => {
      // A user signal keeps the overload on for the whole run: only critical is admitted.
      const { base, limiter } = await mount(t, { ...BASE, priorityHeader: 'x-priority', signals: { storm: () => 10 } })
      overload(limiter)
      // Node's Agent and undici's Pool open another connection while one is busy, as most proxies do.
      const { answers, admittedMs } = await sharedPool(pool(t, Number.POSITIVE_INFINITY), base)
      const refused = answers.filter((a) => a.status === 503)
      t.ok(refused.length > 20 && admittedMs.length > 10, `${answers.length} answers, ${refused.length} refused`)
      t.ok(answers.some((a) => a.ms >= 240), 'refusals on a connection with a run of them were held')
      t.ok(p99(admittedMs) < 100, `admitted p99 ${p99(admittedMs).toFixed(0)} ms`)
    })

    t.test('a pool of a few connections, each carrying many users: afterRefusals raised, admissible requests are not delayed', async (t) => {
      const { base, limiter } = await mount(t, {
        ...BASE, priorityHeader: 'x-priority', signals: { storm: () => 10 }, pacing: { afterRefusals: 30 }
      })
      overload(limiter)
      const { answers, admittedMs } = await sharedPool(pool(t, 4), base)
      t.ok(answers.length > 200, `${answers.length} answers`)
      t.ok(p99(admittedMs) < 100, `admitted p99 ${p99(admittedMs).toFixed(0)} ms`)
    })
  })
}
