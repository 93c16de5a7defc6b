import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { IncomingMessage } from 'node:http'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { PROBLEM_CONTENT_TYPE } from '@spillway/latency-window'
import { loadShedding, SHED_CHANNEL, type LoadSheddingOptions, type ShedEvent } from '../src/index.js'

/**
 * An app with the front door over real HTTP (the front door wraps the server's request listener,
 * which `inject` does not go through). A user signal the test sets drives the threshold; `seen`
 * lists the requests Fastify itself handled (its first hook).
 */
async function serve(t: Test, options: LoadSheddingOptions = {}, load = { value: 0 }) {
  const app: FastifyInstance = Fastify()
  t.teardown(() => app.close())
  const seen: string[] = []
  app.addHook('onRequest', (request, _reply, done) => {
    seen.push(request.url)
    done()
  })
  await app.register(loadShedding, {
    intervalMs: 60_000,
    eventLoop: false,
    queue: false,
    signals: { test: () => load.value },
    gradient2: { initialLimit: 1000 },
    front: { cohortKey: (request: IncomingMessage) => request.headers['x-user'] as string | undefined },
    ...options
  })
  app.get('/critical', { config: { priority: 'critical' } }, async () => 'critical')
  app.get('/low', { config: { priority: 'low' } }, async () => 'low')
  app.get('/normal', async () => 'normal')
  app.get('/items/:id', { config: { priority: 'low' } }, async () => 'item')
  app.get('/health', { config: { loadShedding: false } }, async () => 'health')
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, base, seen, load }
}

/** Drives the threshold down until only `critical` is admitted. */
async function overload(app: FastifyInstance, base: string, load: { value: number }): Promise<void> {
  load.value = 10
  for (let i = 0; i < 30 && app.loadShedding.state.threshold.admittedLevels > app.loadShedding.state.threshold.cohorts; i++) {
    await Promise.all(['/critical', '/normal', '/low', '/items/1'].flatMap((path) =>
      Array.from({ length: 8 }, (_, n) => fetch(`${base}${path}`, { headers: { 'x-user': `u${n}` } }).then((r) => r.arrayBuffer()))))
    app.loadShedding.update()
  }
}

t.test('front door: admitted requests reach Fastify and are decided once', async (t) => {
  const { app, base, seen } = await serve(t)
  for (const path of ['/critical', '/low', '/normal?x=1']) t.equal((await fetch(`${base}${path}`)).status, 200)
  t.same(seen, ['/critical', '/low', '/normal?x=1'])
  const { admitted, inFlight } = app.loadShedding.state
  t.same(admitted, { critical: 1, high: 0, normal: 1, low: 1 }, 'one decision each, at the route priority')
  t.equal(inFlight, 0, 'released when the response ended')
})

t.test('front door: a refused request never reaches Fastify; other routes fall back to the hook', async (t) => {
  const { app, base, seen, load } = await serve(t)
  const events: ShedEvent[] = []
  const listener = (message: unknown): void => { events.push(message as ShedEvent) }
  subscribe(SHED_CHANNEL, listener)
  t.teardown(() => unsubscribe(SHED_CHANNEL, listener))
  await overload(app, base, load)
  seen.length = 0
  events.length = 0

  const low = await fetch(`${base}/low`)
  t.equal(low.status, 503)
  t.equal(low.headers.get('content-type'), PROBLEM_CONTENT_TYPE)
  t.ok(Number(low.headers.get('retry-after')) >= 1, 'a Retry-After in seconds')
  t.match(await low.json(), { status: 503, reason: 'threshold' })
  t.same(seen, [], 'Fastify never saw the refused request')
  t.equal(events.length, 1)
  t.equal((events[0]?.request as IncomingMessage).url, '/low', "the event carries Node's request")

  const item = await fetch(`${base}/items/7`)
  t.equal(item.status, 503, 'a parametric route is still shed, by the hook')
  t.same(seen, ['/items/7'], 'after Fastify routed it')

  t.equal((await fetch(`${base}/critical`)).status, 200, 'critical still served')
  t.equal((await fetch(`${base}/health`)).status, 200, 'a bypassed route goes straight to Fastify')
  t.equal(app.loadShedding.state.inFlight, 0)
})

t.test('front door: a request admitted in front is released even when an app-wide hook answers before ours', async (t) => {
  const app: FastifyInstance = Fastify()
  t.teardown(() => app.close())
  // Registered before the plugin: app-wide hooks run before route hooks, so ours never runs for these.
  app.addHook('onRequest', (request, reply, done) => {
    if (request.headers.authorization === undefined) return reply.code(401).send('who are you?')
    done()
  })
  await app.register(loadShedding, { intervalMs: 60_000, eventLoop: false, queue: false, front: true })
  app.get('/normal', async () => 'normal')
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  for (let i = 0; i < 5; i++) t.equal((await fetch(`${base}/normal`)).status, 401)
  t.equal((await fetch(`${base}/normal`, { headers: { authorization: 'x' } })).status, 200)
  t.equal(app.loadShedding.state.admitted.normal, 6, 'all six admitted in front')
  t.equal(app.loadShedding.state.inFlight, 0, 'and all six released, the 401s included')
})

t.test('front door: the deadline header is honoured in front', async (t) => {
  const { app, base, seen } = await serve(t, { deadlineHeader: 'x-deadline' })
  const late = await fetch(`${base}/normal`, { headers: { 'x-deadline': String(Date.now() - 1000) } })
  t.equal(late.status, 503)
  t.match(await late.json(), { reason: 'deadline' })
  t.same(seen, [])
  t.equal(app.loadShedding.state.shed.normal.deadline, 1)
})

t.test('front door: a route whose priority the priority() function picks is left to the hook', async (t) => {
  const { app, base, seen } = await serve(t, { priority: (request) => (request.headers['x-vip'] === '1' ? 'high' : undefined) })
  t.equal((await fetch(`${base}/normal`, { headers: { 'x-vip': '1' } })).status, 200)
  t.same(seen, ['/normal'])
  t.equal(app.loadShedding.state.admitted.high, 1, "decided by the hook, with the function's priority")
  t.equal((await fetch(`${base}/low`)).status, 200)
  t.equal(app.loadShedding.state.admitted.low, 1, 'a route that names its priority is still decided in front')
})

t.test('front door: the run queue holds requests met in front and hands them to Fastify', async (t) => {
  const { app, base, seen } = await serve(t, { queue: { turnBudgetMs: 0 } })
  const responses = await Promise.all(['/low', '/normal', '/critical'].map((path) => fetch(`${base}${path}`)))
  t.same(responses.map((r) => r.status), [200, 200, 200])
  t.equal(seen.length, 3)
  const state = app.loadShedding.update()
  t.ok(state.signals.queue.dispatched >= 1, `${state.signals.queue.dispatched} ran from the queue`)
  t.equal(state.inFlight, 0)
})

t.test('front option: checked at registration', async (t) => {
  for (const [front, message] of [
    ['yes', /front must be true, false or an object/],
    [{ cohortKey: 'x-user' }, /front\.cohortKey must be a function/]
  ] as const) {
    const app = Fastify()
    await t.rejects(async () => { await app.register(loadShedding, { front: front as never }).ready() }, { code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message })
  }
})
