import Fastify from 'fastify'
import t, { type Test } from 'tap'
import { meterFastify } from '@spillway/latency-window/fastify'
import degradation, { type DegradationOptions } from '../src/plugin.js'
import { manualClock } from './helpers/clock.js'

const TOKEN = 'a-very-secret-admin-token'

async function build(t: Test, extra: Partial<DegradationOptions> = {}) {
  const clock = manualClock(1000)
  // Override expiry reads its own (wall) clock, so that latency the tests simulate does not expire overrides.
  const wall = manualClock(1_000_000)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(degradation, {
    features: [
      { name: 'recommendations', offAtLevel: 1, fallback: [] },
      { name: 'analytics', offAtLevel: 1 },
      { name: 'search_suggestions', offAtLevel: 2, fallback: () => ['popular'] },
      { name: 'image_processing', offAtLevel: 3, fallback: async () => ({ resized: false }) }
    ],
    thresholds: { latencyMs: [100, 200, 400] },
    dwellMs: 1000,
    minSamples: 5,
    evaluateIntervalMs: 0,
    now: clock.now,
    wallNow: wall.now,
    ...extra
  })
  // A route whose latency the test chooses on the injected clock.
  app.get('/slow', async (request) => {
    clock.advance(Number((request.query as { ms?: string }).ms ?? 0))
    return 'ok'
  })
  const load = async (ms: number, count = 10) => {
    for (let i = 0; i < count; i++) await app.inject(`/slow?ms=${ms}`)
    app.degradation.evaluate()
  }
  return { app, clock, wall, load }
}

t.test('a feature asked for in an app-wide onRequest hook reaches the header', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(degradation, {
    features: [{ name: 'analytics', offAtLevel: 1 }],
    evaluateIntervalMs: 0
  })
  app.addHook('onRequest', async (request) => {
    ;(request as unknown as { early: boolean }).early = request.feature('analytics')
  })
  app.get('/', async (request) => ({ early: (request as unknown as { early: boolean }).early }))
  app.degradation.overrides.forceLevel(1)
  const response = await app.inject('/')
  t.same(response.json(), { early: false })
  t.equal(response.headers['spillway-degraded'], 'analytics')
})

t.test('request.feature answers from the level; a false answer names the feature in the header', async (t) => {
  const { app, load } = await build(t)
  app.get('/page', async (request) => ({
    recommendations: request.feature('recommendations'),
    search: request.feature('search_suggestions'),
    again: request.feature('recommendations')
  }))
  let response = await app.inject('/page')
  t.same(response.json(), { recommendations: true, search: true, again: true })
  t.equal(response.headers['spillway-degraded'], undefined, 'no header while nothing is degraded')
  await load(150)
  t.equal(app.degradation.level, 1)
  response = await app.inject('/page')
  t.same(response.json(), { recommendations: false, search: true, again: false })
  t.equal(response.headers['spillway-degraded'], 'recommendations', 'listed once although asked twice')
  t.equal(app.degradation.fallbacksServed('recommendations'), 1)
  await load(250)
  response = await app.inject('/page')
  t.equal(response.headers['spillway-degraded'], 'recommendations, search_suggestions')
})

t.test('request.feature on an undeclared feature is a loud error', async (t) => {
  const { app } = await build(t)
  app.get('/typo', async (request) => request.feature('recomendations'))
  const response = await app.inject('/typo')
  t.equal(response.statusCode, 500)
  t.match(response.json(), { code: 'SPILLWAY_DEGRADATION_UNKNOWN_FEATURE' })
})

t.test('request.degrade: full path while on; fallback value, sync and async functions while off; a throwing fallback answers null', async (t) => {
  const { app } = await build(t)
  let fullCalls = 0
  const full = async () => {
    fullCalls++
    return ['personal']
  }
  app.get('/d/:how', async (request) => {
    const how = (request.params as { how: string }).how
    switch (how) {
      case 'value': return { r: await request.degrade('recommendations', full, ['cached']) }
      case 'sync': return { r: await request.degrade('recommendations', full, () => ['sync']) }
      case 'async': return { r: await request.degrade('recommendations', full, async () => ['async']) }
      case 'throws': return { r: await request.degrade('recommendations', full, () => { throw new Error('boom') }) }
      case 'rejects': return { r: await request.degrade('recommendations', full, async () => { throw new Error('boom') }) }
      case 'declared': return { r: await request.degrade('search_suggestions', full) }
      case 'declared-async': return { r: await request.degrade('image_processing', full) }
      case 'none': return { r: await request.degrade('analytics', full) }
      default: return { r: await request.degrade('nope', full) }
    }
  })
  t.same((await app.inject('/d/value')).json(), { r: ['personal'] })
  t.equal(fullCalls, 1)
  app.degradation.overrides.forceLevel(3)
  const expected: Record<string, unknown> = {
    value: ['cached'], sync: ['sync'], async: ['async'], throws: null, rejects: null,
    declared: ['popular'], 'declared-async': { resized: false }, none: null
  }
  for (const [how, r] of Object.entries(expected)) {
    const response = await app.inject(`/d/${how}`)
    t.equal(response.statusCode, 200, how)
    t.same(response.json(), { r }, how)
    t.ok(response.headers['spillway-degraded'], how)
  }
  t.equal(fullCalls, 1, 'the full path never ran while off')
  t.equal((await app.inject('/d/unknown')).statusCode, 500)
  t.equal(app.degradation.fallbacksServed('recommendations'), 5)
})

t.test('a gated route answers its fallback while the feature is off, never a 500', async (t) => {
  const { app } = await build(t, {
    features: [
      { name: 'value', offAtLevel: 1, fallback: { items: [] } },
      { name: 'sync', offAtLevel: 1, fallback: (_request, reply) => { void reply?.code(203); return { items: ['stale'] } } },
      { name: 'async', offAtLevel: 1, fallback: async () => ({ items: ['later'] }) },
      { name: 'throws', offAtLevel: 1, fallback: () => { throw new Error('boom') } },
      { name: 'rejects', offAtLevel: 1, fallback: async () => { throw new Error('boom') } },
      { name: 'sends', offAtLevel: 1, fallback: (_request, reply) => reply?.code(202).send('sent by fallback') },
      { name: 'none', offAtLevel: 1 },
      { name: 'healthy', offAtLevel: 3 }
    ]
  })
  let handled = 0
  const names = ['value', 'sync', 'async', 'throws', 'rejects', 'sends', 'none', 'healthy']
  for (const name of names) {
    app.get(`/g/${name}`, { config: { feature: name } }, async () => {
      handled++
      return { items: ['full'] }
    })
  }
  app.get('/optout', { config: { feature: false } }, async () => 'ok')
  for (const name of names) t.same((await app.inject(`/g/${name}`)).json(), { items: ['full'] }, `${name} on`)
  t.equal(handled, names.length)
  app.degradation.overrides.forceLevel(1)
  const expected: Record<string, [number, unknown]> = {
    value: [200, { items: [] }],
    sync: [203, { items: ['stale'] }],
    async: [200, { items: ['later'] }],
    throws: [503, { type: 'about:blank', title: 'Service Unavailable', status: 503, detail: 'throws is degraded and has no usable fallback' }],
    rejects: [503, { status: 503 }],
    sends: [202, 'sent by fallback'],
    none: [503, { status: 503, detail: 'none is degraded and has no usable fallback' }]
  }
  for (const [name, [status, body]] of Object.entries(expected)) {
    const response = await app.inject(`/g/${name}`)
    t.equal(response.statusCode, status, name)
    if (typeof body === 'string') t.equal(response.body, body, name)
    else t.match(response.json(), body, name)
    t.equal(response.headers['spillway-degraded'], name, name)
    if (status === 503) {
      t.equal(response.headers['retry-after'], '1')
      t.match(response.headers['content-type'], /^application\/problem\+json/)
    }
  }
  t.equal(handled, names.length, 'no handler ran while its feature was off')
  const healthy = await app.inject('/g/healthy')
  t.same(healthy.json(), { items: ['full'] })
  t.equal(healthy.headers['spillway-degraded'], undefined)
  t.equal((await app.inject('/optout')).body, 'ok')
})

t.test('a route gated on an undeclared feature fails at registration', async (t) => {
  const { app } = await build(t)
  t.throws(() => app.get('/x', { config: { feature: 'nope' } }, async () => 'x'), {
    code: 'SPILLWAY_DEGRADATION_OPTIONS',
    message: /config\.feature of GET \/x must be false or a declared feature name, got "nope"/
  })
})

t.test('the header name is configurable, or off', async (t) => {
  for (const header of ['X-Degraded', false] as const) {
    const { app } = await build(t, { header })
    app.get('/page', async (request) => request.feature('analytics'))
    app.degradation.overrides.forceLevel(1)
    const response = await app.inject('/page')
    t.equal(response.headers['x-degraded'], header === false ? undefined : 'analytics')
    t.equal(response.headers['spillway-degraded'], undefined)
  }
})

t.test('level from latency: up at once, then down one level per dwell; too few samples hold', async (t) => {
  const { app, clock, load } = await build(t, { latencyWindow: { windowMs: 10_000, slices: 10 } })
  await load(500, 4)
  t.equal(app.degradation.level, 0, 'four samples are too few to judge')
  t.equal(app.degradation.status().held, true)
  await load(500, 1)
  t.equal(app.degradation.level, 3, 'up at once')
  clock.advance(11_000)
  await load(1)
  t.equal(app.degradation.level, 3, 'the dwell starts now')
  clock.advance(1000)
  await load(1)
  t.equal(app.degradation.level, 2)
  clock.advance(1000)
  await load(1)
  t.equal(app.degradation.level, 1)
  clock.advance(1000)
  await load(1)
  t.equal(app.degradation.level, 0)
  t.match(app.degradation.status().lastChange, { from: 1, to: 0, reason: 'recovered' })
})

t.test('overrides through the API beat the controller and expire', async (t) => {
  const { app, wall, load } = await build(t)
  app.get('/page', async (request) => request.feature('recommendations'))
  app.degradation.overrides.pin('recommendations', true, { ttlMs: 2000 })
  await load(250)
  t.equal(app.degradation.level, 2)
  t.equal((await app.inject('/page')).body, 'true', 'pinned on under load')
  wall.advance(2000)
  app.degradation.evaluate()
  t.equal((await app.inject('/page')).body, 'false', 'the pin expired')
  app.degradation.overrides.forceLevel(0, { ttlMs: 500 })
  t.equal((await app.inject('/page')).body, 'true')
  wall.advance(500)
  app.degradation.evaluate()
  t.equal(app.degradation.level, 2)
})

t.test('status route and admin route', async (t) => {
  const { app } = await build(t, { statusRoute: '/status', admin: { token: TOKEN } })
  const status = await app.inject('/status')
  t.match(status.json(), { level: 0, levels: 3, features: [{ name: 'recommendations', on: true }] })
  const path = '/_spillway/degradation'
  for (const authorization of [undefined, 'Bearer wrong', `Basic ${TOKEN}`]) {
    const headers = authorization === undefined ? {} : { authorization }
    const refused = await app.inject({ method: 'PUT', url: path, headers, payload: { level: 3 } })
    t.equal(refused.statusCode, 401)
    t.equal(refused.headers['www-authenticate'], 'Bearer realm="spillway-degradation"')
    t.match(refused.json(), { status: 401 })
  }
  t.equal(app.degradation.level, 0, 'nothing changed without the token')
  const auth = { authorization: `Bearer ${TOKEN}` }
  let response = await app.inject({ method: 'PUT', url: path, headers: auth, payload: { level: 2, pins: { analytics: true }, reason: 'drill' } })
  t.equal(response.statusCode, 200)
  t.match(response.json(), { level: 2, forcedLevel: 2, overrides: { level: { level: 2, reason: 'drill' }, pins: { analytics: { on: true } } } })
  t.equal(app.degradation.isOn('analytics'), true)
  response = await app.inject({ method: 'PUT', url: path, headers: auth, payload: { level: 9 } })
  t.equal(response.statusCode, 400)
  t.match(response.json(), { status: 400, detail: /level must be null or an integer in \[0, 3\], got 9/ })
  response = await app.inject({ method: 'PUT', url: path, headers: auth, payload: { level: 1, pins: { ghost: true } } })
  t.equal(response.statusCode, 400)
  t.equal(app.degradation.level, 2, 'a bad request changes nothing')
  t.equal((await app.inject({ method: 'PUT', url: path, headers: auth, payload: [] })).statusCode, 400)
  t.equal((await app.inject({ method: 'PUT', url: path, headers: auth, payload: { pins: [] } })).statusCode, 400)
  t.equal((await app.inject({ method: 'PUT', url: path, headers: auth, payload: { ttlMs: -1, level: 1 } })).statusCode, 400)
  response = await app.inject({ method: 'PUT', url: path, headers: auth, payload: { level: null, pins: { analytics: 'off' } } })
  t.match(response.json(), { status: 400, detail: /pins\.analytics must be true, false or null, got "off"/ })
  response = await app.inject({ method: 'PUT', url: path, headers: auth, payload: { level: null, pins: { analytics: false }, ttlMs: 'x' } })
  t.equal(response.statusCode, 400)
  t.equal(app.degradation.level, 2, 'still nothing changed')
  response = await app.inject({ method: 'PUT', url: path, headers: auth, payload: { level: null, pins: { analytics: null } } })
  t.match(response.json(), { forcedLevel: null, overrides: { pins: {} } })
  await app.inject({ method: 'PUT', url: path, headers: auth, payload: { level: 3 } })
  response = await app.inject({ method: 'DELETE', url: path, headers: auth })
  t.match(response.json(), { level: 0, forcedLevel: null })
  t.match((await app.inject({ url: path, headers: auth })).json(), { level: 0 })
})

t.test('bad options throw SPILLWAY_DEGRADATION_OPTIONS at registration', async (t) => {
  const features = [{ name: 'a', offAtLevel: 1 }]
  const cases: [Record<string, unknown>, RegExp][] = [
    [{}, /^features must be a non-empty array/],
    [{ features, percentile: 0 }, /^percentile must be a finite number in \(0, 1\], got 0/],
    [{ features, percentile: 1.5 }, /^percentile .*got 1\.5/],
    [{ features, evaluateIntervalMs: 5 }, /^evaluateIntervalMs must be 0 or .*got 5/],
    [{ features, header: 'Bad Header' }, /^header must be false or a header name.*got "Bad Header"/],
    [{ features, statusRoute: 'status' }, /^statusRoute .*got "status"/],
    [{ features, admin: {} }, /^admin\.token must be a string of at least 16 characters, got undefined/],
    [{ features, admin: { token: 'short' } }, /^admin\.token .*got "\(hidden\)"/],
    [{ features, admin: { token: TOKEN, path: 'x' } }, /^admin\.path .*got "x"/],
    [{ features, redis: {} }, /^redis\.client must be a Redis client/],
    [{ features, redis: { client: { get() {} } } }, /^redis\.client\.set must be a function, got undefined/],
    [{ features, redis: { client: { get() {}, set() {}, publish() {}, duplicate() {} }, prefix: 1 } }, /^redis\.prefix .*got 1/],
    [{ features, redis: { client: { get() {}, set() {}, publish() {}, duplicate() {} }, refreshIntervalMs: -1 } }, /^redis\.refreshIntervalMs .*got -1/],
    [{ features, now: 1 }, /^now must be a function, got 1/],
    [{ features, wallNow: 'x' }, /^wallNow must be a function/],
    [{ features, dwellMs: -5 }, /^dwellMs .*got -5/],
    [{ features, levels: 2 }, /^thresholds must be at least one signal with 2 thresholds/]
  ]
  for (const [options, message] of cases) {
    const app = Fastify()
    await t.rejects(async () => {
      await app.register(degradation, options as never)
      await app.ready()
    }, { code: 'SPILLWAY_DEGRADATION_OPTIONS', message }, String(message))
    await app.close()
  }
})

/** Registers the plugin with `options` and answers what `ready()` rejected with. */
async function registrationError(t: Test, options: unknown): Promise<unknown> {
  const app = Fastify()
  t.teardown(() => app.close())
  return app.register(degradation, options as never).ready().then(() => undefined, (e: unknown) => e)
}

const features = [{ name: 'recommendations', offAtLevel: 1 }]
const code = 'SPILLWAY_DEGRADATION_OPTIONS'

t.test('an unknown option fails at registration', async (t) => {
  t.match(await registrationError(t, { features, burst: 1 }), { code, message: /^burst is not an option; the options are features, percentile, / })
})

t.test('a misspelt option fails with a did-you-mean', async (t) => {
  t.match(await registrationError(t, { features, evaluateInterval: 100 }), { code, message: /^evaluateInterval is not an option; did you mean evaluateIntervalMs\?$/ })
})

t.test('names from @fastify/under-pressure name ours, or say there is none', async (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ maxEventLoopDelay: 100 }, /^maxEventLoopDelay is an option of @fastify\/under-pressure, not ours; thresholds\.eventLoopDelayMs is one event-loop delay per level/],
    [{ maxEventLoopUtilization: 0.98 }, /^maxEventLoopUtilization is an option of @fastify\/under-pressure, not ours; thresholds\.utilization/],
    [{ maxHeapUsedBytes: 1e9 }, /^maxHeapUsedBytes is an option of @fastify\/under-pressure, not ours; there is no memory signal here/],
    [{ pressureHandler: () => {} }, /^pressureHandler is an option of @fastify\/under-pressure, not ours; there is no equivalent/],
    [{ exposeStatusRoute: true }, /^exposeStatusRoute is an option of @fastify\/under-pressure, not ours; statusRoute: '\/path'/]
  ]
  for (const [options, message] of cases) {
    t.match(await registrationError(t, { features, ...options }), { code, message }, String(Object.keys(options)))
  }
})

t.test('an unknown key in a nested option fails at registration, named by its path', async (t) => {
  const client = { get() {}, set() {}, publish() {}, duplicate() {} }
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ features: [{ name: 'a', offAtLevel: 1, fallbak: [] }] }, /^features\[0\]\.fallbak is not an option; did you mean fallback\?$/],
    [{ features, thresholds: { latency: [1, 2, 3] } }, /^thresholds\.latency is not an option; did you mean latencyMs\?$/],
    [{ features, admin: { tokn: TOKEN } }, /^admin\.tokn is not an option; did you mean token\?$/],
    [{ features, redis: { client, prefx: 'x:' } }, /^redis\.prefx is not an option; did you mean prefix\?$/],
    [{ features, latencyWindow: { windowMS: 2000 } }, /^latencyWindow\.windowMS is not an option; did you mean windowMs\?$/],
    [{ features, latencyWindow: { now: () => 1 } }, /^latencyWindow\.now is not an option; latencyWindow takes windowMs, slices$/],
    [{ features, eventLoop: { interval: 100 } }, /^eventLoop\.interval is not an option; did you mean intervalMs\?$/]
  ]
  for (const [options, message] of cases) {
    t.match(await registrationError(t, options), { code, message }, String(message))
  }
})

t.test('a misspelt nested option fails also when another plugin created the shared meter first', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  meterFastify(app, 'first')
  await t.rejects(async () => { await app.register(degradation, { features, latencyWindow: { slice: 4 } } as never).ready() },
    { code, message: /^latencyWindow\.slice is not an option; did you mean slices\?$/ })
})

t.test('every option known: a full configuration registers', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(degradation, {
    features: [{ name: 'recommendations', offAtLevel: 1, fallback: [] }], levels: 3, thresholds: { latencyMs: [100, 200, 400], eventLoopDelayMs: false },
    recoverRatio: 0.5, dwellMs: 1000, minSamples: 5, percentile: 0.9, evaluateIntervalMs: 0, header: 'X-Degraded',
    latencyWindow: { windowMs: 2000, slices: 4 }, eventLoop: { intervalMs: 100, resolutionMs: 5 }, statusRoute: '/status',
    admin: { token: TOKEN, path: '/admin' }, now: () => 0, wallNow: () => 0
  })
  await app.ready()
  t.equal((await app.inject('/status')).statusCode, 200)
})

t.test('the evaluation timer runs the controller and stops on close', async (t) => {
  const app = Fastify()
  await app.register(degradation, {
    features: [{ name: 'a', offAtLevel: 1 }],
    evaluateIntervalMs: 10
  })
  await app.ready()
  app.degradation.overrides.forceLevel(1, { ttlMs: 15 })
  await new Promise((resolve) => setTimeout(resolve, 60))
  t.equal(app.degradation.level, 0, 'the timer expired the override')
  t.not(app.degradation.status().reading, null, 'and took readings')
  await app.close()
})

t.test('the load shedder\'s published pressure raises the level; one meter measures each request once', async (t) => {
  const { app, load } = await build(t, { thresholds: { latencyMs: [100, 200, 400], pressure: [0.3, 0.6, 0.9] } })
  const meter = meterFastify(app, 'load-shedding')
  t.equal(meter.measuredBy, 'degradation', 'the load shedder reads the meter the plugin installed')
  await load(1)
  t.equal(meter.latency.count, 10, 'ten requests, ten samples')
  t.equal(app.degradation.level, 0, 'no pressure published yet')
  meter.publishPressure('load-shedding', 0.65)
  app.degradation.evaluate()
  t.equal(app.degradation.level, 2)
  t.match(app.degradation.status().lastChange, { reason: 'pressure', value: 0.65, threshold: 0.6 })
})

t.test('its latencyWindow applies even when another plugin created the shared meter first', async (t) => {
  const clock = manualClock(1000)
  const app = Fastify()
  t.teardown(() => app.close())
  // The load shedder registered first, with the default 10 s window.
  const meter = meterFastify(app, 'load-shedding', { now: clock.now })
  await app.register(degradation, {
    features: [{ name: 'recommendations', offAtLevel: 1, fallback: [] }],
    levels: 1,
    thresholds: { latencyMs: [100] },
    latencyWindow: { windowMs: 1000, slices: 4 },
    dwellMs: 500,
    minSamples: 5,
    evaluateIntervalMs: 0,
    now: clock.now
  })
  app.get('/slow', async () => {
    clock.advance(150)
    return 'ok'
  })
  for (let i = 0; i < 5; i++) await app.inject('/slow')
  app.degradation.evaluate()
  t.equal(app.degradation.level, 1)
  clock.advance(1500)
  t.equal(meter.latency.count, 5, 'the shared 10 s window still holds the slow requests')
  app.degradation.evaluate()
  t.equal(app.degradation.status().reading?.samples, 0, 'the plugin reads its own 1 s window, now empty')
  t.equal(app.degradation.level, 1, 'too few samples: the level holds rather than guess')
})
