import { PRIORITIES } from '@spillway/latency-window'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import { loadShedding, type LoadSheddingOptions } from '../src/index.js'

/**
 * How `inject` schedules: each `app.inject(url)` starts on a `process.nextTick`, and Fastify runs
 * the hooks and a GET handler synchronously from there. So the requests of one `Promise.all` of
 * injects are all handled in one loop turn, one after the other — as a burst read from many
 * sockets in one poll phase would be. With handlers that busy-wait 3 ms and a 1 ms turn budget,
 * the first request of the burst opens the turn and runs at once; the second starts 3 ms into the
 * turn and must wait, and every later one waits because the queue is not empty. The queue then
 * runs one request per immediate (3 ms > 1 ms budget), most important first.
 */
const HANDLER_MS = 3

function busy(ms: number): void {
  const end = performance.now() + ms
  while (performance.now() < end) { /* the CPU-bound handler */ }
}

const nextImmediate = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** An app whose routes (`/critical`, `/high`, `/normal`, `/low`) record `?id=` in `ran`, then busy-wait. */
async function build(t: Test, options: LoadSheddingOptions = {}): Promise<{ app: FastifyInstance, ran: string[] }> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(loadShedding, {
    intervalMs: 60_000,
    eventLoop: false,
    gradient2: { initialLimit: 1000 },
    maxQueueMs: { high: 1e6, normal: 1e6, low: 1e6 },
    queue: { turnBudgetMs: 1 },
    ...options
  })
  const ran: string[] = []
  for (const priority of PRIORITIES) {
    app.get(`/${priority}`, { config: { priority } }, async (request) => {
      ran.push((request.query as { id: string }).id)
      busy(HANDLER_MS)
      return 'ok'
    })
  }
  await app.ready()
  // Warm the routes up (the first request compiles a lot), let the loop turn end, and start a
  // fresh control interval (the warm-up requests may have waited in the queue too).
  for (const priority of PRIORITIES) await app.inject(`/${priority}?id=warm`)
  await nextImmediate()
  app.loadShedding.update()
  ran.length = 0
  return { app, ran }
}

/** The burst: every `[priority, id]` injected in the same tick. */
function burst(app: FastifyInstance, requests: Array<[string, string]>): Promise<LightMyRequestResponse[]> {
  return Promise.all(requests.map(([priority, id]) => app.inject(`/${priority}?id=${id}`)))
}

const MIXED: Array<[string, string]> = [
  ['low', 'low1'], ['low', 'low2'], ['normal', 'normal3'], ['high', 'high4'], ['low', 'low5'], ['high', 'high6'], ['critical', 'critical7']
]
const ARRIVAL_ORDER = MIXED.map(([, id]) => id)

t.test('a burst of CPU-bound requests is queued and run most important first; all are answered', async (t) => {
  const { app, ran } = await build(t)
  const responses = await burst(app, MIXED)
  t.same(responses.map((r) => r.statusCode), [200, 200, 200, 200, 200, 200, 200], 'every request answered')
  t.same(ran, ['low1', 'critical7', 'high4', 'high6', 'normal3', 'low2', 'low5'],
    'the first opened the turn and ran at once; the waiting ones by priority, FIFO within one')
  const state = app.loadShedding.update()
  t.same(state.signals.queue, { expired: 0, dispatched: 6, peakLength: 6, length: 0 }, 'six waited, none too long')
  t.same(state.admitted, { critical: 2, high: 3, normal: 2, low: 4 }, 'all admitted (with one warm-up request each)')
  t.equal(state.inFlight, 0, 'every slot released')
  t.equal(state.overloaded, false, 'no expiry: no overload')
  t.equal(state.threshold.admittedLevels, state.threshold.levels)
})

t.test('a request that waits past its maxQueueMs is refused from the queue: 503, reason queue', async (t) => {
  // low may wait 30 ms; fifteen high requests of 3 ms are ahead of it.
  const { app, ran } = await build(t, { maxQueueMs: { high: 1e6, normal: 1e6, low: 30 } })
  const highs = Array.from({ length: 15 }, (_, n): [string, string] => ['high', `high${n + 1}`])
  const responses = await burst(app, [['high', 'high0'], ['low', 'low'], ...highs])
  const low = responses[1]!
  t.equal(low.statusCode, 503)
  t.match(low.headers['content-type'], /^application\/problem\+json/)
  t.ok(Number(low.headers['retry-after']) > 0, 'with a Retry-After')
  t.match(low.json(), { status: 503, title: 'Service Unavailable', reason: 'queue' })
  t.ok(responses.every((r, i) => i === 1 || r.statusCode === 200), 'every high request served')
  t.notOk(ran.includes('low'), 'the low handler never ran')
  t.same(ran, ['high0', ...highs.map(([, id]) => id)])
  const state = app.loadShedding.update()
  t.equal(state.shed.low.queue, 1, 'counted as a queue shed of low')
  t.equal(state.admitted.low, 1, 'only the warm-up: never admitted')
  t.equal(state.signals.queue.expired, 1, 'expired in the run queue (not shed on arrival)')
  t.equal(state.signals.queue.dispatched, 15)
  t.equal(state.overloaded, true, 'an expiry is the overload signal')
  t.equal(state.inFlight, 0, 'the refused request held no slot')
})

t.test('a full queue refuses a newcomer at once, whatever its priority', async (t) => {
  const { app, ran } = await build(t, { queue: { turnBudgetMs: 1, maxLength: 2 } })
  const responses = await burst(app, [['normal', 'n0'], ['normal', 'n1'], ['normal', 'n2'], ['low', 'l3'], ['high', 'h4']])
  t.same(responses.map((r) => r.statusCode), [200, 200, 200, 503, 503])
  t.equal(responses[4]!.json().reason, 'queue')
  t.same(ran, ['n0', 'n1', 'n2'])
  const state = app.loadShedding.update()
  t.equal(state.shed.low.queue, 1)
  t.equal(state.shed.high.queue, 1)
  t.same(state.signals.queue, { expired: 2, dispatched: 2, peakLength: 2, length: 0 })
})

t.test('queue: false never queues: handlers run in arrival order', async (t) => {
  const { app, ran } = await build(t, { queue: false })
  const responses = await burst(app, MIXED)
  t.ok(responses.every((r) => r.statusCode === 200))
  t.same(ran, ARRIVAL_ORDER)
  t.same(app.loadShedding.update().signals.queue, { expired: 0, dispatched: 0, peakLength: 0, length: 0 })
})

t.test('shadow mode never queues (it changes nothing, so it reorders nothing)', async (t) => {
  const { app, ran } = await build(t, { mode: 'shadow', queue: { turnBudgetMs: 1 } })
  const responses = await burst(app, MIXED)
  t.ok(responses.every((r) => r.statusCode === 200))
  t.same(ran, ARRIVAL_ORDER)
  t.same(app.loadShedding.update().signals.queue, { expired: 0, dispatched: 0, peakLength: 0, length: 0 })
})

t.test('within the budget nothing waits: short handlers run in arrival order', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(loadShedding, { intervalMs: 60_000, eventLoop: false, gradient2: { initialLimit: 1000 }, queue: { turnBudgetMs: 1000 } })
  const ran: string[] = []
  for (const priority of PRIORITIES) {
    app.get(`/${priority}`, { config: { priority } }, async (request) => { ran.push((request.query as { id: string }).id); return 'ok' })
  }
  await app.ready()
  const responses = await burst(app, MIXED)
  t.ok(responses.every((r) => r.statusCode === 200))
  t.same(ran, ARRIVAL_ORDER)
  t.equal(app.loadShedding.update().signals.queue.dispatched, 0)
})

t.test('closing the server refuses the requests still waiting', async (t) => {
  const app = Fastify()
  await app.register(loadShedding, { intervalMs: 60_000, eventLoop: false, gradient2: { initialLimit: 1000 }, queue: { turnBudgetMs: 1 } })
  const ran: string[] = []
  let closed: Promise<undefined> | undefined
  app.get('/work', async (request) => {
    const { id } = request.query as { id: string }
    ran.push(id)
    busy(HANDLER_MS)
    // The first request closes the server; the two behind it are already waiting in the queue.
    if (id === 'a') closed = app.close()
    return 'ok'
  })
  await app.ready()
  const responses = await Promise.all(['a', 'b', 'c'].map((id) => app.inject(`/work?id=${id}`)))
  await closed
  t.same(responses.map((r) => r.statusCode), [200, 503, 503])
  t.equal(responses[1]!.json().reason, 'queue')
  t.same(ran, ['a'], 'the waiting ones never ran')
  t.equal(app.loadShedding.state.shed.normal.queue, 2)
})
