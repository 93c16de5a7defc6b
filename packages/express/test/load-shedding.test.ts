import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import express from 'express'
import t, { type Test } from 'tap'
import { sharedMeter } from '@spillway/latency-window'
import { SHED_CHANNEL, UPDATE_CHANNEL } from '@spillway/load-shedding/core'
import { loadShedding, type ExpressLoadSheddingOptions, type LoadSheddingMiddleware } from '../src/load-shedding.js'
import { PROBLEM_CONTENT_TYPE } from '../src/respond.js'
import { serve } from './helpers/serve.js'

interface ShedMessage { priority: string, reason: string, shadow: boolean }

/**
 * An app whose controller moves only when the test says so: no timer-driven steps (interval 60 s),
 * no event-loop signal, a user signal the test sets, a large limit and queue allowance (a burst of
 * requests arrives in one loop turn). Priorities are per-route mounts, as Fastify's route config.
 */
async function build(t: Test, options: ExpressLoadSheddingOptions = {}, load = { value: 0 }) {
  const app = express()
  const shed = loadShedding({
    intervalMs: 60_000,
    eventLoop: false,
    signals: { test: () => load.value },
    gradient2: { initialLimit: 1000 },
    maxQueueMs: { high: 1e6, normal: 1e6, low: 1e6 },
    // These cases count refusals step by step; pacing's own cases are in the protocol tests.
    pacing: false,
    ...options
  })
  t.teardown(() => shed.close())
  const ok = (_req: express.Request, res: express.Response) => { res.send('ok') }
  app.get('/critical', shed.route({ priority: 'critical' }), ok)
  app.get('/high', shed.route({ priority: 'high' }), ok)
  app.get('/low', shed.route({ priority: 'low' }), ok)
  app.get('/health', ok)
  app.use(shed)
  app.get('/normal', ok)
  app.get('/any', ok)
  app.get('/fail', (_req, res) => { res.status(500).send('boom') })
  const base = await serve(t, app)
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const response = await fetch(`${base}${path}`, { headers })
    return { status: response.status, headers: response.headers, body: await response.text() }
  }
  return { app, shed, get }
}

/** Traffic on every route, then a control step; repeated until only `critical` is admitted. */
async function overload(shed: LoadSheddingMiddleware, get: (path: string, headers?: Record<string, string>) => Promise<unknown>, load: { value: number }, steps = 30) {
  load.value = 10
  for (let i = 0; i < steps; i++) {
    for (const path of ['/critical', '/high', '/normal', '/low']) {
      await Promise.all(Array.from({ length: 16 }, (_, n) => get(path, { 'x-user': `u${n}` })))
    }
    shed.update()
  }
}

t.test('admits everything while calm', async (t) => {
  const { shed, get } = await build(t)
  for (const path of ['/critical', '/high', '/normal', '/low', '/health']) t.equal((await get(path)).status, 200)
  t.equal(shed.state.admitted.normal, 1)
  t.equal(shed.state.inFlight, 0, 'released on finish')
  t.equal(shed.pressure, 0)
})

t.test('under overload: low shed before normal before high; critical and unmounted routes still served', async (t) => {
  const load = { value: 0 }
  const { shed, get } = await build(t, {}, load)
  load.value = 1
  const firstShed: string[] = []
  for (let i = 0; i < 60; i++) {
    for (const path of ['/critical', '/high', '/normal', '/low']) {
      const responses = await Promise.all(Array.from({ length: 16 }, () => get(path)))
      if (responses.some((r) => r.status === 503) && !firstShed.includes(path)) firstShed.push(path)
      if (path === '/critical') t.ok(responses.every((r) => r.status === 200), 'critical served')
    }
    shed.update()
  }
  t.same(firstShed, ['/low', '/normal', '/high'])
  t.equal((await get('/health')).status, 200, 'a route without the middleware is never shed')
  t.equal(shed.pressure, 1)
})

t.test('a refusal is a 503 problem+json with a jittered Retry-After, kept out of the latency window', async (t) => {
  const load = { value: 0 }
  const { app, shed, get } = await build(t, { retryAfterMs: { min: 10_000, max: 10_000 } }, load)
  await overload(shed, get, load)
  const measured = sharedMeter(app).latency.count
  const seen = new Set<string>()
  for (let i = 0; i < 40; i++) {
    const response = await get('/low')
    t.equal(response.status, 503)
    seen.add(String(response.headers.get('retry-after')))
    if (i === 0) {
      t.equal(response.headers.get('content-type'), PROBLEM_CONTENT_TYPE)
      t.match(JSON.parse(response.body), { type: 'about:blank', status: 503, title: 'Service Unavailable', reason: 'threshold' })
    }
  }
  for (const value of seen) t.ok(Number(value) >= 5 && Number(value) <= 15, `Retry-After ${value} within ±50% of 10 s`)
  t.ok(seen.size > 3, 'not one constant every client obeys at once')
  t.equal(sharedMeter(app).latency.count, measured, 'no shed request in the latency window')
})

t.test('statusCode 429', async (t) => {
  const load = { value: 0 }
  const { shed, get } = await build(t, { statusCode: 429 }, load)
  await overload(shed, get, load)
  const response = await get('/low')
  t.equal(response.status, 429)
  t.ok(response.headers.get('retry-after'))
  t.match(JSON.parse(response.body), { title: 'Too Many Requests', status: 429 })
})

t.test('the bypass option lists request paths never shed', async (t) => {
  const load = { value: 0 }
  const { shed, get } = await build(t, { bypass: ['/any'] }, load)
  await overload(shed, get, load)
  t.equal((await get('/any')).status, 200)
  t.equal((await get('/normal')).status, 503)
})

t.test('shadow mode decides and counts, sheds nothing', async (t) => {
  const load = { value: 0 }
  const { shed, get } = await build(t, { mode: 'shadow' }, load)
  const events: ShedMessage[] = []
  const onShed = (message: unknown): void => { events.push(message as ShedMessage) }
  subscribe(SHED_CHANNEL, onShed)
  t.teardown(() => unsubscribe(SHED_CHANNEL, onShed))
  await overload(shed, get, load)
  t.equal((await get('/low')).status, 200)
  t.ok(shed.state.shed.low.threshold > 0, 'would-be sheds counted')
  t.equal(shed.state.mode, 'shadow')
  t.ok(events.length > 0 && events.every((e) => e.shadow), 'events say shadow')
  t.equal(shed.state.inFlight, 0, 'every let-through request released its slot')
})

t.test('priority: the route mount first, then the priority function, then a trusted header, then the default', async (t) => {
  const load = { value: 0 }
  const { shed, get } = await build(t, {
    priority: (req) => (req.headers['x-plan'] === 'gold' ? 'high' : undefined),
    priorityHeader: 'X-Priority',
    defaultPriority: 'low'
  }, load)
  await overload(shed, get, load)
  t.equal((await get('/any', { 'x-priority': 'critical' })).status, 200, 'trusted header')
  t.equal((await get('/any', { 'x-plan': 'gold', 'x-priority': 'critical' })).status, 503, 'the function wins over the header')
  t.equal((await get('/low', { 'x-priority': 'critical' })).status, 503, 'the route mount wins')
  t.equal((await get('/any', { 'x-priority': 'bogus' })).status, 503, 'invalid header → default')
})

t.test('an untrusted priority header is ignored', async (t) => {
  const load = { value: 0 }
  const { shed, get } = await build(t, {}, load)
  await overload(shed, get, load)
  t.equal((await get('/any', { 'x-priority': 'critical', priority: 'critical' })).status, 503)
})

t.test('cohorts: with a key, the same users are shed consistently while the threshold sits inside a priority', async (t) => {
  const load = { value: 0 }
  const { shed, get } = await build(t, { cohorts: 16, cohortKey: (req) => req.headers['x-user'] as string | undefined }, load)
  load.value = 1
  for (let i = 0; i < 3 && shed.state.threshold.admitsDownTo.priority === 'low'; i++) {
    await Promise.all(Array.from({ length: 64 }, (_, n) => get('/low', { 'x-user': `u${n}` })))
    shed.update()
  }
  t.equal(shed.state.threshold.admitsDownTo.priority, 'low', 'part of low shed, not all')
  load.value = 0
  let mixed = 0
  for (let n = 0; n < 64; n++) {
    const first = (await get('/low', { 'x-user': `u${n}` })).status
    for (let k = 0; k < 3; k++) t.equal((await get('/low', { 'x-user': `u${n}` })).status, first, `u${n} gets the same answer`)
    if (first === 503) mixed++
  }
  t.ok(mixed > 0 && mixed < 64, `${mixed} of 64 users shed: some, not all`)
})

t.test('deadline header: a request read after its deadline is dropped', async (t) => {
  const { shed, get } = await build(t, { deadlineHeader: 'x-deadline' })
  t.equal((await get('/normal', { 'x-deadline': String(Date.now() - 1) })).status, 503)
  t.equal((await get('/normal', { 'x-deadline': String(Date.now() + 60_000) })).status, 200)
  t.equal((await get('/normal', { 'x-deadline': 'soon' })).status, 200, 'unparsable: ignored')
  t.equal(shed.state.shed.normal.deadline, 1)
  t.equal(JSON.parse((await get('/normal', { 'x-deadline': '1' })).body).reason, 'deadline')
})

t.test('status route and the update channel report the state; pressure reaches the shared meter', async (t) => {
  const load = { value: 0 }
  const states: unknown[] = []
  const onUpdate = (message: unknown): void => { states.push(message) }
  subscribe(UPDATE_CHANNEL, onUpdate)
  t.teardown(() => unsubscribe(UPDATE_CHANNEL, onUpdate))
  const { app, shed, get } = await build(t, { statusRoute: '/_shed' }, load)
  await overload(shed, get, load, 5)
  const status = await get('/_shed')
  t.equal(status.status, 200, 'never shed itself')
  t.match(JSON.parse(status.body), { mode: 'enforce', overloaded: true, limit: Number, inFlight: 0, threshold: { levels: 512 } })
  t.ok(states.length >= 5)
  t.equal(sharedMeter(app).pressure, shed.pressure)
  t.equal(sharedMeter(app).pressureSource, 'load-shedding')
})

t.test('the admitted slot is released when the response ends, and a 5xx counts as a drop', async (t) => {
  const { shed, get } = await build(t, { algorithm: 'aimd', aimd: { initialLimit: 10, minLimit: 1 } })
  t.equal((await get('/fail')).status, 500)
  t.equal(shed.state.inFlight, 0)
  shed.update()
  t.equal(shed.state.limit, 9, 'AIMD backed off on the 5xx')
})

t.test('a client that goes away releases its slot, once', async (t) => {
  const app = express()
  const shed = loadShedding({ intervalMs: 60_000, eventLoop: false })
  t.teardown(() => shed.close())
  app.use(shed)
  let reached!: () => void
  const inHandler = new Promise<void>((resolve) => { reached = resolve })
  let closed!: () => void
  const responseClosed = new Promise<void>((resolve) => { closed = resolve })
  app.get('/hang', (_req, res) => {
    res.on('close', () => setImmediate(closed))
    reached()
  })
  const base = await serve(t, app)
  const controller = new AbortController()
  const request = fetch(`${base}/hang`, { signal: controller.signal }).catch(() => 'aborted')
  await inHandler
  t.equal(shed.state.inFlight, 1)
  controller.abort()
  await request
  await responseClosed
  t.equal(shed.state.inFlight, 0)
})

t.test('timers: the control step runs on its interval and stops on close', async (t) => {
  const shed = loadShedding({ intervalMs: 10 })
  const states: unknown[] = []
  const onUpdate = (message: unknown): void => { states.push(message) }
  subscribe(UPDATE_CHANNEL, onUpdate)
  const deadline = performance.now() + 5000
  while (states.length < 2 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  shed.close()
  const count = states.length
  await new Promise((resolve) => setTimeout(resolve, 50))
  unsubscribe(UPDATE_CHANNEL, onUpdate)
  t.ok(count >= 2, `${count} steps`)
  t.equal(states.length, count, 'no step after close')
})

t.test('bad options throw at creation with the plugin code', async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ['statusCode', { statusCode: 500 }, /statusCode must be 503 or 429, got 500/],
    ['mode', { mode: 'maybe' }, /mode must be one of/],
    ['intervalMs', { intervalMs: 1 }, /intervalMs must be a finite number in \[10, 60000\], got 1/],
    ['bypass', { bypass: '/health' }, /bypass must be an array/]
  ]
  for (const [name, options, message] of cases) {
    t.throws(() => loadShedding(options as ExpressLoadSheddingOptions), { code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message }, name)
  }
  const shed = loadShedding({ eventLoop: false })
  t.teardown(() => shed.close())
  t.throws(() => shed.route({ priority: 'urgent' as never }), { code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message: /route\(\)\.priority.*"urgent"/ })
})

t.test('an unknown option throws at creation, with a did-you-mean', async (t) => {
  t.throws(() => loadShedding({ bypas: ['/health'] } as never), {
    code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message: /option: bypas is not an option; did you mean bypass\?$/
  })
})

t.test('@fastify/under-pressure\'s names name ours', async (t) => {
  t.throws(() => loadShedding({ maxEventLoopDelay: 100 } as never), {
    code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message: /maxEventLoopDelay is an option of @fastify\/under-pressure, not ours; targetDelayMs/
  })
})

t.test('an unknown key in a nested option throws at creation, named by its path', async (t) => {
  t.throws(() => loadShedding({ queue: { turnBudget: 5 } } as never), {
    code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message: /queue\.turnBudget is not an option; did you mean turnBudgetMs\?$/
  })
})

t.test('the plugin\'s front option is refused: the front door is shed.front(app)', async (t) => {
  t.throws(() => loadShedding({ front: true } as never), {
    code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message: /front must be absent: put the shedder in front with shed\.front\(app, \{ priority\?, cohortKey\? \}\), got true/
  })
})

t.test('an unknown key in route() options throws when the route middleware is created', async (t) => {
  const shed = loadShedding({ eventLoop: false })
  t.teardown(() => shed.close())
  t.throws(() => shed.route({ priorty: 'high' } as never), {
    code: 'SPILLWAY_LOAD_SHEDDING_OPTIONS', message: /route\(\)\.priorty is not an option; did you mean priority\?$/
  })
})

t.test('every option known: a full configuration is created and admits', async (t) => {
  const { get } = await build(t, {
    mode: 'enforce', algorithm: 'aimd', aimd: { initialLimit: 100, minLimit: 2, maxLimit: 1000, backoffRatio: 0.5, timeoutMs: 500 },
    shares: { critical: 2, high: 1.5, normal: 1, low: 0.5 }, targetDelayMs: 20, minUtilization: 0.5, maxUtilization: 0.9,
    queue: { turnBudgetMs: 4, maxLength: 100, headroom: 0.4 }, tightenRatio: 0.2, maxTightenRatio: 0.6, relaxRatio: 0.1, cohorts: 16,
    cohortKey: () => undefined, cohortRotateMs: 60_000, defaultPriority: 'normal', priority: () => undefined, priorityHeader: 'x-priority',
    bypass: ['/health'], statusCode: 429, retryAfterMs: { min: 500, max: 5000 }, deadlineHeader: 'x-deadline', statusRoute: '/shedding'
  })
  t.equal((await get('/any')).status, 200)
})
