import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { loadShedding, SHED_CHANNEL, UPDATE_CHANNEL, type LoadSheddingOptions, type ShedEvent } from '../src/index.js'

/**
 * An app whose controller moves only when the test says so: no timer-driven steps (interval 60 s),
 * no event-loop signal, and a user signal the test sets. A large limit and queue allowance: a
 * burst of `inject`s runs in one loop turn and all at once, which would trip them (their own tests
 * are in concurrency-limiter, loop-turn and priority-limiter).
 */
async function build(t: Test, options: LoadSheddingOptions = {}, load = { value: 0 }): Promise<FastifyInstance> {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(loadShedding, {
    intervalMs: 60_000,
    eventLoop: false,
    signals: { test: () => load.value },
    gradient2: { initialLimit: 1000 },
    maxQueueMs: { high: 1e6, normal: 1e6, low: 1e6 },
    ...options
  })
  app.get('/critical', { config: { priority: 'critical' } }, async () => 'ok')
  app.get('/high', { config: { priority: 'high' } }, async () => 'ok')
  app.get('/normal', async () => 'ok')
  app.get('/low', { config: { priority: 'low' } }, async () => 'ok')
  app.get('/health', { config: { loadShedding: false } }, async () => 'ok')
  app.get('/any', async () => 'ok')
  await app.ready()
  return app
}

/** Traffic on every route, then a control step; repeated until only `critical` is admitted. */
async function overload(app: FastifyInstance, load: { value: number }, steps = 30): Promise<void> {
  load.value = 10
  for (let i = 0; i < steps; i++) {
    for (const url of ['/critical', '/high', '/normal', '/low']) {
      await Promise.all(Array.from({ length: 16 }, (_, n) => app.inject({ url, headers: { 'x-user': `u${n}` } })))
    }
    app.loadShedding.update()
  }
}

t.test('admits everything while calm', async (t) => {
  const app = await build(t)
  for (const url of ['/critical', '/high', '/normal', '/low', '/health']) t.equal((await app.inject(url)).statusCode, 200)
  t.equal(app.loadShedding.state.admitted.normal, 1)
  t.equal(app.loadShedding.pressure, 0)
})

t.test('under overload: low shed before normal before high; critical and bypassed routes still served', async (t) => {
  const load = { value: 0 }
  const app = await build(t, {}, load)
  // Just over the limit: the threshold cuts 10% of the admitted traffic per step.
  load.value = 1
  const firstShed: string[] = []
  for (let i = 0; i < 60; i++) {
    for (const url of ['/critical', '/high', '/normal', '/low']) {
      const responses = await Promise.all(Array.from({ length: 16 }, () => app.inject(url)))
      if (responses.some((r) => r.statusCode === 503) && !firstShed.includes(url)) firstShed.push(url)
      if (url === '/critical') t.ok(responses.every((r) => r.statusCode === 200), 'critical served')
    }
    app.loadShedding.update()
  }
  t.same(firstShed, ['/low', '/normal', '/high'])
  t.equal((await app.inject('/health')).statusCode, 200, 'config.loadShedding: false bypasses')
  t.equal(app.loadShedding.pressure, 1)
})

t.test('a refusal is a 503 problem+json with a jittered Retry-After', async (t) => {
  const load = { value: 0 }
  const app = await build(t, { retryAfterMs: { min: 10_000, max: 10_000 } }, load)
  await overload(app, load)
  const seen = new Set<string>()
  for (let i = 0; i < 40; i++) {
    const response = await app.inject('/low')
    t.equal(response.statusCode, 503)
    seen.add(String(response.headers['retry-after']))
    if (i === 0) {
      t.match(response.headers['content-type'], /^application\/problem\+json/)
      t.match(response.json(), { type: 'about:blank', status: 503, title: 'Service Unavailable', reason: 'threshold' })
    }
  }
  for (const value of seen) t.ok(Number(value) >= 5 && Number(value) <= 15, `Retry-After ${value} within ±50% of 10 s`)
  t.ok(seen.size > 3, 'not one constant every client obeys at once')
})

t.test('statusCode 429', async (t) => {
  const load = { value: 0 }
  const app = await build(t, { statusCode: 429 }, load)
  await overload(app, load)
  const response = await app.inject('/low')
  t.equal(response.statusCode, 429)
  t.ok(response.headers['retry-after'])
  t.match(response.json(), { title: 'Too Many Requests', status: 429 })
})

t.test('the bypass option lists routes never shed', async (t) => {
  const load = { value: 0 }
  const app = await build(t, { bypass: ['/low'] }, load)
  await overload(app, load)
  t.equal((await app.inject('/low')).statusCode, 200)
  t.equal((await app.inject('/normal')).statusCode, 503)
})

t.test('shadow mode decides and counts, sheds nothing', async (t) => {
  const load = { value: 0 }
  const app = await build(t, { mode: 'shadow' }, load)
  const events: ShedEvent[] = []
  const onShed = (message: unknown): void => { events.push(message as ShedEvent) }
  subscribe(SHED_CHANNEL, onShed)
  t.teardown(() => unsubscribe(SHED_CHANNEL, onShed))
  await overload(app, load)
  t.equal((await app.inject('/low')).statusCode, 200)
  t.ok(app.loadShedding.state.shed.low.threshold > 0, 'would-be sheds counted')
  t.equal(app.loadShedding.state.mode, 'shadow')
  t.ok(events.length > 0 && events.every((e) => e.shadow), 'events say shadow')
  t.equal(app.loadShedding.state.inFlight, 0, 'every let-through request released its slot')
})

t.test('priority: route config first, then the priority function, then a trusted header, then the default', async (t) => {
  const load = { value: 0 }
  const app = await build(t, {
    priority: (request) => (request.headers['x-plan'] === 'gold' ? 'high' : undefined),
    priorityHeader: 'X-Priority',
    defaultPriority: 'low'
  }, load)
  await overload(app, load)
  // Only critical is admitted now, so the outcome tells which priority each request got.
  t.equal((await app.inject({ url: '/any', headers: { 'x-priority': 'critical' } })).statusCode, 200, 'trusted header')
  t.equal((await app.inject({ url: '/any', headers: { 'x-plan': 'gold', 'x-priority': 'critical' } })).statusCode, 503,
    'the function wins over the header')
  t.equal((await app.inject({ url: '/low', headers: { 'x-priority': 'critical' } })).statusCode, 503, 'route config wins')
  t.equal((await app.inject({ url: '/any', headers: { 'x-priority': 'bogus' } })).statusCode, 503, 'invalid header → default')
  t.equal(app.loadShedding.state.shed.low.threshold > 0, true, 'default is low')
})

t.test('an untrusted priority header is ignored', async (t) => {
  const load = { value: 0 }
  const app = await build(t, {}, load)
  await overload(app, load)
  const response = await app.inject({ url: '/any', headers: { 'x-priority': 'critical', priority: 'critical' } })
  t.equal(response.statusCode, 503, 'no header was named trusted: the client cannot promote itself')
})

t.test('cohorts: with a key, the same users are shed consistently while the threshold sits inside a priority', async (t) => {
  const load = { value: 0 }
  const app = await build(t, { cohorts: 16, cohortKey: (request) => request.headers['x-user'] as string | undefined }, load)
  // Move the threshold into the low priority only.
  load.value = 1
  for (let i = 0; i < 3 && app.loadShedding.state.threshold.admitsDownTo.priority === 'low'; i++) {
    await Promise.all(Array.from({ length: 64 }, (_, n) => app.inject({ url: '/low', headers: { 'x-user': `u${n}` } })))
    app.loadShedding.update()
  }
  t.equal(app.loadShedding.state.threshold.admitsDownTo.priority, 'low', 'part of low shed, not all')
  load.value = 0
  const outcome = async (user: string): Promise<number> => (await app.inject({ url: '/low', headers: { 'x-user': user } })).statusCode
  let mixed = 0
  for (let n = 0; n < 64; n++) {
    const first = await outcome(`u${n}`)
    for (let k = 0; k < 3; k++) t.equal(await outcome(`u${n}`), first, `u${n} gets the same answer`)
    if (first === 503) mixed++
  }
  t.ok(mixed > 0 && mixed < 64, `${mixed} of 64 users shed: some, not all`)
})

t.test('deadline header: a request read after its deadline is dropped', async (t) => {
  const app = await build(t, { deadlineHeader: 'x-deadline' })
  t.equal((await app.inject({ url: '/normal', headers: { 'x-deadline': String(Date.now() - 1) } })).statusCode, 503)
  t.equal((await app.inject({ url: '/normal', headers: { 'x-deadline': String(Date.now() + 60_000) } })).statusCode, 200)
  t.equal((await app.inject({ url: '/normal', headers: { 'x-deadline': 'soon' } })).statusCode, 200, 'unparsable: ignored')
  t.equal(app.loadShedding.state.shed.normal.deadline, 1)
  const body = (await app.inject({ url: '/normal', headers: { 'x-deadline': '1' } })).json()
  t.equal(body.reason, 'deadline')
})

t.test('status route and the update channel report the state; pressure reaches the shared meter', async (t) => {
  const load = { value: 0 }
  const states: unknown[] = []
  const onUpdate = (message: unknown): void => { states.push(message) }
  subscribe(UPDATE_CHANNEL, onUpdate)
  t.teardown(() => unsubscribe(UPDATE_CHANNEL, onUpdate))
  const app = await build(t, { statusRoute: '/_shed' }, load)
  await overload(app, load, 5)
  const status = await app.inject('/_shed')
  t.equal(status.statusCode, 200, 'never shed itself')
  t.match(status.json(), { mode: 'enforce', overloaded: true, limit: Number, inFlight: 0, threshold: { levels: 512 } })
  t.ok(states.length >= 5)
  const { sharedMeter } = await import('@spillway/latency-window')
  t.equal(sharedMeter(app.server).pressure, app.loadShedding.pressure)
  t.equal(sharedMeter(app.server).pressureSource, 'load-shedding')
})

t.test('the admitted slot is released when the response ends, and a 5xx counts as a drop', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(loadShedding, { intervalMs: 60_000, eventLoop: false, algorithm: 'aimd', aimd: { initialLimit: 10, minLimit: 1 } })
  app.get('/fail', async () => { throw new Error('boom') })
  await app.ready()
  t.equal((await app.inject('/fail')).statusCode, 500)
  t.equal(app.loadShedding.state.inFlight, 0)
  app.loadShedding.update()
  t.equal(app.loadShedding.state.limit, 9, 'AIMD backed off on the 5xx')
})

t.test('timers: the control step runs on its interval and stops on close', async (t) => {
  const app = Fastify()
  await app.register(loadShedding, { intervalMs: 10 })
  app.get('/', async () => 'ok')
  await app.ready()
  const states: unknown[] = []
  const onUpdate = (message: unknown): void => { states.push(message) }
  subscribe(UPDATE_CHANNEL, onUpdate)
  const deadline = performance.now() + 5000
  while (states.length < 2 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  await app.close()
  const count = states.length
  await new Promise((resolve) => setTimeout(resolve, 50))
  unsubscribe(UPDATE_CHANNEL, onUpdate)
  t.ok(count >= 2, `${count} steps`)
  t.equal(states.length, count, 'no step after close')
})

t.test('a route with an invalid config.priority fails at registration', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(loadShedding, { eventLoop: false })
  t.throws(() => app.get('/x', { config: { priority: 'urgent' as never } }, async () => 'ok'),
    { code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message: /route \/x: config\.priority.*"urgent"/ })
})
