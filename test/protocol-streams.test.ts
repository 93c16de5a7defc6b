/**
 * Long-lived responses are not overload, over real HTTP with real server-sent-event clients,
 * against every mount alike: the load shedder's four (Fastify hook, Fastify front door, Express
 * middleware, Express front door) and degradation's two (Fastify plugin, Express middleware).
 * A stream holds its slot and counts in flight only until its headers are out; a long-lived route
 * holds nothing; streams never read as latency.
 */
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { loadShedding as fastifyLoadShedding, type LoadSheddingOptions } from '../packages/load-shedding/src/index.js'
import { Fastify } from '../packages/load-shedding/test/support/fastify.js'
import degradation from '../packages/degradation/src/index.js'
import { loadShedding as expressLoadShedding } from '../packages/express/src/load-shedding.js'
import { degradation as expressDegradation } from '../packages/express/src/degradation.js'
import { longLived } from '../packages/express/src/request-meter.js'
import { express } from '../packages/express/test/helpers/express.js'
import { openEventStream, type EventStream } from '../packages/latency-window/test/helpers/event-stream.js'
import { agent, get, sleep } from '../packages/degradation/test/support/http.js'

t.teardown(() => agent.destroy())

/** What the cases read of a mount's shedder. */
interface Shedder {
  readonly state: { inFlight: number, shed: { normal: Record<string, number> }, admitted: { normal: number } }
  update(): unknown
}
interface Mounted {
  port: number
  shedder: Shedder
  /** Lets the `/late` stream send its headers. */
  sendLateHeaders(): void
}
type Options = Omit<LoadSheddingOptions, 'cohortKey' | 'priority' | 'front' | 'bypass'>
type Mount = (t: Test, options: Options) => Promise<Mounted>

/** A text/event-stream: headers and a first event at once, then an event every 50 ms until the client goes. */
function serveEvents(response: ServerResponse, request: IncomingMessage): void {
  response.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  response.write('data: hello\n\n')
  const timer = setInterval(() => response.write('data: tick\n\n'), 50)
  request.on('close', () => clearInterval(timer))
}

/** The routes every mount serves, written on Node's request and response. */
function routes() {
  let sendLateHeaders: () => void = () => {}
  const late = new Promise<void>((resolve) => { sendLateHeaders = resolve })
  return {
    sendLateHeaders: () => sendLateHeaders(),
    events: serveEvents,
    // A stream whose headers wait (an authorization lookup before the first event).
    async late(response: ServerResponse, request: IncomingMessage): Promise<void> {
      await late
      serveEvents(response, request)
    },
    // A long poll: nothing is sent until there is news.
    async poll(response: ServerResponse): Promise<void> {
      await sleep(300)
      response.end('news')
    }
  }
}

async function listen(t: Test, server: Server): Promise<number> {
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return (server.address() as AddressInfo).port
}

function fastifyMount(front: boolean): Mount {
  return async (t, options) => {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(fastifyLoadShedding, { ...options, front })
    const served = routes()
    app.get('/work', async () => ({ ok: true }))
    app.get('/events', (request, reply) => { reply.hijack(); served.events(reply.raw, request.raw) })
    app.get('/late', async (request, reply) => { reply.hijack(); await served.late(reply.raw, request.raw) })
    app.get('/poll', { config: { longLived: true } }, async (_request, reply) => { reply.hijack(); await served.poll(reply.raw) })
    await app.listen({ port: 0, host: '127.0.0.1' })
    return { port: (app.server.address() as AddressInfo).port, shedder: app.loadShedding, sendLateHeaders: served.sendLateHeaders }
  }
}

function expressMount(front: boolean): Mount {
  return async (t, options) => {
    const shed = expressLoadShedding(options)
    t.teardown(() => shed.close())
    const app = express()
    if (!front) app.use(shed)
    const served = routes()
    app.get('/work', (_req, res) => { res.json({ ok: true }) })
    app.get('/events', (req, res) => { served.events(res, req) })
    app.get('/late', (req, res) => { void served.late(res, req) })
    app.get('/poll', longLived(), (_req, res) => { void served.poll(res) })
    const port = await listen(t, createServer(front ? shed.front(app) : app))
    return { port, shedder: shed, sendLateHeaders: served.sendLateHeaders }
  }
}

const SHEDDERS: Record<string, Mount> = {
  'Fastify hook': fastifyMount(false),
  'Fastify front door': fastifyMount(true),
  'Express middleware': expressMount(false),
  'Express front door': expressMount(true)
}

// The event loop left out: these cases are about slots, not about how busy a shared machine is.
const BASE: Options = { eventLoop: false }

async function closeAll(streams: EventStream[]): Promise<void> {
  for (const stream of streams) stream.close()
  await sleep(50)
}

for (const [name, mount] of Object.entries(SHEDDERS)) {
  t.test(`load shedding, ${name}`, async (t) => {
    t.test('200 open event streams on an idle server and ordinary requests beside them: all admitted', async (t) => {
      // The default limit: 20 requests in flight.
      const { port, shedder } = await mount(t, BASE)
      const streams = await Promise.all(Array.from({ length: 200 }, () => openEventStream(port, '/events')))
      t.teardown(() => closeAll(streams))
      const opened = streams.filter((stream) => stream.response.statusCode === 200)
      t.equal(opened.length, 200, 'every stream opened')
      await Promise.all(opened.map((stream) => stream.received(1)))
      const answers = await Promise.all(Array.from({ length: 50 }, () => get(port, '/work')))
      t.equal(answers.filter((answer) => answer.status === 200).length, 50, '50 ordinary requests answered while they stream')
      await Promise.all(opened.map((stream) => stream.received(2)))
      shedder.update()
      t.equal(shedder.state.inFlight, 0, 'open streams hold no slot')
      t.same(Object.values(shedder.state.shed.normal).reduce((a, b) => a + b, 0), 0, 'nothing refused')
      t.equal(shedder.state.admitted.normal, 250)
    })

    t.test('a stream holds its slot until its headers are out', async (t) => {
      const { port, shedder, sendLateHeaders } = await mount(t, BASE)
      const opening = openEventStream(port, '/late')
      await sleep(100)
      shedder.update()
      t.equal(shedder.state.inFlight, 1, 'waiting for its first event, it is work in flight')
      sendLateHeaders()
      const stream = await opening
      t.teardown(() => closeAll([stream]))
      await stream.received(2)
      shedder.update()
      t.equal(shedder.state.inFlight, 0, 'streaming, it is not')
    })

    t.test('a long-lived route holds no slot, even with a limit of one', async (t) => {
      const { port, shedder } = await mount(t, { ...BASE, algorithm: 'aimd', aimd: { initialLimit: 1, minLimit: 1 } })
      const polls = Array.from({ length: 5 }, () => get(port, '/poll'))
      await sleep(100)
      shedder.update()
      t.equal(shedder.state.inFlight, 0, 'five long polls waiting, no slot held')
      const work = await get(port, '/work')
      t.equal(work.status, 200, 'the one slot is free for ordinary work')
      const answers = await Promise.all(polls)
      t.same(answers.map((answer) => answer.body), ['news', 'news', 'news', 'news', 'news'], 'every poll admitted and answered')
    })
  })
}

interface DegradationMounted { port: number, degradation: { level: number, status(): { reading: { latencyMs: number } | null } } }
type DegradationMount = (t: Test) => Promise<DegradationMounted>

// 3 s streams that end on their own: the server writes the last event and ends the response.
function stream3s(response: ServerResponse): void {
  response.writeHead(200, { 'content-type': 'text/event-stream' })
  response.write('data: hello\n\n')
  setTimeout(() => response.end('data: bye\n\n'), 3000)
}

const DEGRADATION_OPTIONS = {
  features: [{ name: 'recommendations', offAtLevel: 1, fallback: [] }],
  // Latency only (the defaults 250/500/1000 ms): a shared test machine's event loop is another matter.
  thresholds: { eventLoopDelayMs: false as const, pressure: false as const }
}

const DEGRADATIONS: Record<string, DegradationMount> = {
  async 'Fastify plugin'(t) {
    const app = Fastify()
    t.teardown(() => app.close())
    await app.register(degradation, DEGRADATION_OPTIONS)
    app.get('/work', async () => ({ ok: true }))
    app.get('/events', (_request, reply) => { reply.hijack(); stream3s(reply.raw) })
    await app.listen({ port: 0, host: '127.0.0.1' })
    return { port: (app.server.address() as AddressInfo).port, degradation: app.degradation }
  },
  async 'Express middleware'(t) {
    const degrade = expressDegradation({ ...DEGRADATION_OPTIONS, logger: { warn: () => {}, info: () => {} } })
    t.teardown(() => degrade.close())
    const app = express()
    app.use(degrade)
    app.get('/work', (_req, res) => { res.json({ ok: true }) })
    app.get('/events', (_req, res) => { stream3s(res) })
    const port = await listen(t, createServer(app))
    return { port, degradation: degrade.degradation }
  }
}

for (const [name, mount] of Object.entries(DEGRADATIONS)) {
  t.test(`degradation, ${name}: 15% of requests are 3 s event streams, and the level stays 0`, async (t) => {
    const { port, degradation: state } = await mount(t)
    const streams: EventStream[] = []
    t.teardown(() => closeAll(streams))
    let highest = 0
    let highestLatency = 0
    const watch = setInterval(() => {
      highest = Math.max(highest, state.level)
      highestLatency = Math.max(highestLatency, state.status().reading?.latencyMs ?? 0)
    }, 50)
    t.teardown(() => clearInterval(watch))
    // 4 s: a request every 10 ms, three in twenty of them event streams.
    const started = performance.now()
    let sent = 0
    const ordinary: Promise<unknown>[] = []
    while (performance.now() - started < 4000) {
      if (sent % 20 === 1 || sent % 20 === 8 || sent % 20 === 15) streams.push(await openEventStream(port, '/events'))
      else ordinary.push(get(port, '/work'))
      sent++
      await sleep(10)
    }
    await Promise.all(ordinary)
    // The first streams have ended on their own by now; the controller evaluates every 500 ms.
    await sleep(1500)
    t.ok(streams.length >= 40 && streams.length / sent >= 0.14, `${streams.length} streams of ${sent} requests`)
    t.ok(streams.slice(0, 5).every((stream) => stream.events.at(-1) === 'bye'), 'the first streams ran their 3 s')
    t.equal(highest, 0, 'level 0 throughout')
    t.ok(highestLatency < 250, `the streams' 3 s never read as latency (p95 at most ${highestLatency.toFixed(1)} ms)`)
  })
}
