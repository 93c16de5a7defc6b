import express from 'express'
import t, { type Test } from 'tap'
import { degradation, type ExpressDegradationOptions } from '../src/degradation.js'
import { PROBLEM_CONTENT_TYPE } from '../src/respond.js'
import { manualClock, serve } from './helpers/serve.js'

const silent = { warn: () => {}, info: () => {} }

async function build(t: Test, extra: Partial<ExpressDegradationOptions> = {}) {
  const clock = manualClock(1000)
  const wall = manualClock(1_000_000)
  const app = express()
  const degrade = degradation({
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
    logger: silent,
    ...extra
  })
  t.teardown(() => degrade.close())
  app.use(degrade)
  // A route whose latency the test chooses on the injected clock.
  app.get('/slow', (req, res) => {
    clock.advance(Number(req.query.ms ?? 0))
    res.send('ok')
  })
  return { app, degrade, clock, wall }
}

async function start(t: Test, app: express.Express, degrade: ReturnType<typeof degradation>) {
  const base = await serve(t, app)
  const load = async (ms: number, count = 10) => {
    for (let i = 0; i < count; i++) await (await fetch(`${base}/slow?ms=${ms}`)).text()
    degrade.degradation.evaluate()
  }
  return { base, load }
}

t.test('req.feature answers from the level; a false answer names the feature in the header', async (t) => {
  const { app, degrade } = await build(t)
  app.get('/page', (req, res) => {
    res.json({ recommendations: req.feature('recommendations'), search: req.feature('search_suggestions'), again: req.feature('recommendations') })
  })
  const { base, load } = await start(t, app, degrade)
  let response = await fetch(`${base}/page`)
  t.same(await response.json(), { recommendations: true, search: true, again: true })
  t.equal(response.headers.get('spillway-degraded'), null, 'no header while nothing is degraded')
  await load(150)
  t.equal(degrade.degradation.level, 1)
  response = await fetch(`${base}/page`)
  t.same(await response.json(), { recommendations: false, search: true, again: false })
  t.equal(response.headers.get('spillway-degraded'), 'recommendations', 'listed once although asked twice')
  t.equal(degrade.degradation.fallbacksServed('recommendations'), 1)
  await load(250)
  response = await fetch(`${base}/page`)
  t.equal(response.headers.get('spillway-degraded'), 'recommendations, search_suggestions')
})

t.test('req.degrade runs full() while on, the fallback while off; a throwing fallback answers null', async (t) => {
  const { app, degrade } = await build(t)
  app.get('/product', async (req, res) => {
    res.json({
      declared: await req.degrade('recommendations', () => ['full']),
      given: await req.degrade('recommendations', () => ['full'], ['given']),
      computed: await req.degrade('recommendations', () => ['full'], async () => ['computed']),
      broken: await req.degrade('recommendations', () => ['full'], () => { throw new Error('boom') })
    })
  })
  const { base } = await start(t, app, degrade)
  t.same(await (await fetch(`${base}/product`)).json(), { declared: ['full'], given: ['full'], computed: ['full'], broken: ['full'] })
  degrade.degradation.overrides.forceLevel(1)
  const response = await fetch(`${base}/product`)
  t.same(await response.json(), { declared: [], given: ['given'], computed: ['computed'], broken: null })
  t.equal(response.headers.get('spillway-degraded'), 'recommendations')
})

t.test('an undeclared feature is a loud error, not silently on', async (t) => {
  const { app, degrade } = await build(t)
  app.get('/typo', (req, res) => { res.json(req.feature('recomendations')) })
  app.use((error: { code?: string }, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(500).json({ code: error.code })
  })
  const { base } = await start(t, app, degrade)
  const response = await fetch(`${base}/typo`)
  t.equal(response.status, 500)
  t.same(await response.json(), { code: 'SPILLWAY_DEGRADATION_UNKNOWN_FEATURE' })
})

t.test('a gated route answers its fallback while off, 503 problem+json without one, never a 500', async (t) => {
  const { app, degrade } = await build(t)
  let ran = 0
  const handler = (_req: express.Request, res: express.Response) => { ran++; res.json({ full: true }) }
  app.get('/recs', degrade.gate('recommendations'), handler)
  app.get('/analytics', degrade.gate('analytics'), handler)
  app.get('/search', degrade.gate('search_suggestions'), handler)
  app.get('/image', degrade.gate('image_processing'), handler)
  const { base } = await start(t, app, degrade)
  t.same(await (await fetch(`${base}/recs`)).json(), { full: true })
  degrade.degradation.overrides.forceLevel(3)
  ran = 0
  let response = await fetch(`${base}/recs`)
  t.equal(response.status, 200)
  t.same(await response.json(), [])
  t.equal(response.headers.get('spillway-degraded'), 'recommendations')
  t.same(await (await fetch(`${base}/search`)).json(), ['popular'])
  t.same(await (await fetch(`${base}/image`)).json(), { resized: false })
  response = await fetch(`${base}/analytics`)
  t.equal(response.status, 503)
  t.equal(response.headers.get('content-type'), PROBLEM_CONTENT_TYPE)
  t.equal(response.headers.get('retry-after'), '1')
  t.match(await response.json(), { type: 'about:blank', title: 'Service Unavailable', status: 503, detail: /analytics/ })
  t.equal(ran, 0, 'no gated handler ran')
})

t.test('a gated route whose fallback throws answers 503', async (t) => {
  const { app, degrade } = await build(t, {
    features: [{ name: 'flaky', offAtLevel: 1, fallback: () => { throw new Error('no') } },
      { name: 'flaky_async', offAtLevel: 1, fallback: async () => { throw new Error('no') } }]
  })
  app.get('/flaky', degrade.gate('flaky'), (_req, res) => { res.send('full') })
  app.get('/flaky-async', degrade.gate('flaky_async'), (_req, res) => { res.send('full') })
  const { base } = await start(t, app, degrade)
  degrade.degradation.overrides.forceLevel(1)
  t.equal((await fetch(`${base}/flaky`)).status, 503)
  t.equal((await fetch(`${base}/flaky-async`)).status, 503)
})

t.test('the level comes down after the dwell', async (t) => {
  const { app, degrade, clock } = await build(t)
  app.get('/page', (req, res) => { res.json(req.feature('recommendations')) })
  const { load } = await start(t, app, degrade)
  await load(450)
  t.equal(degrade.degradation.level, 3)
  clock.advance(10_000)
  await load(1, 100)
  clock.advance(1001)
  degrade.degradation.evaluate()
  t.ok(degrade.degradation.level < 3, 'dropped after the dwell')
})

t.test('header renamed or off; status route', async (t) => {
  const renamed = await build(t, { header: 'X-Degraded', statusRoute: '/_status' })
  renamed.app.get('/page', (req, res) => { res.json(req.feature('recommendations')) })
  const r = await start(t, renamed.app, renamed.degrade)
  renamed.degrade.degradation.overrides.forceLevel(1)
  const response = await fetch(`${r.base}/page`)
  t.equal(response.headers.get('x-degraded'), 'recommendations')
  t.equal(response.headers.get('spillway-degraded'), null)
  const status = await (await fetch(`${r.base}/_status`)).json() as { level: number }
  t.equal(status.level, 1)

  const off = await build(t, { header: false })
  off.app.get('/page', (req, res) => { res.json(req.feature('recommendations')) })
  const o = await start(t, off.app, off.degrade)
  off.degrade.degradation.overrides.forceLevel(1)
  const quiet = await fetch(`${o.base}/page`)
  t.equal(await quiet.json(), false)
  t.equal(quiet.headers.get('spillway-degraded'), null)
})

t.test('bad options throw at creation with the plugin code', async (t) => {
  const cases: [string, unknown, RegExp][] = [
    ['no features', {}, /features must be a non-empty array/],
    ['offAtLevel out of range', { features: [{ name: 'a', offAtLevel: 4 }] }, /features\[0\]\.offAtLevel must be an integer in \[1, 3\], got 4/],
    ['header', { features: [{ name: 'a', offAtLevel: 1 }], header: 'bad header' }, /header must be/],
    ['admin', { features: [{ name: 'a', offAtLevel: 1 }], admin: { token: 'x'.repeat(20) } }, /admin must be absent/],
    ['logger', { features: [{ name: 'a', offAtLevel: 1 }], logger: {} }, /logger must be/]
  ]
  for (const [name, options, message] of cases) {
    t.throws(() => degradation(options as ExpressDegradationOptions), { code: 'SPILLWAY_DEGRADATION_OPTIONS', message }, name)
  }
  const degrade = degradation({ features: [{ name: 'a', offAtLevel: 1 }], evaluateIntervalMs: 0 })
  t.teardown(() => degrade.close())
  t.throws(() => degrade.gate('b'), { code: 'SPILLWAY_DEGRADATION_OPTIONS', message: /gate must be a declared feature name, got "b"/ })
})

t.test('req.feature on a route the middleware does not cover says so', async (t) => {
  const app = express()
  const degrade = degradation({ features: [{ name: 'recs', offAtLevel: 1 }], evaluateIntervalMs: 0, logger: silent })
  t.teardown(() => degrade.close())
  const covered = express.Router()
  covered.use(degrade)
  covered.get('/in', (req, res) => { res.json(req.feature('recs')) })
  app.use('/covered', covered)
  app.get('/out', (req, res) => { res.json(req.feature('recs')) })
  app.use((error: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    res.status(500).json({ message: error.message })
  })
  const base = await serve(t, app)
  t.equal(await (await fetch(`${base}/covered/in`)).json(), true)
  const out = await fetch(`${base}/out`)
  t.equal(out.status, 500)
  t.match(await out.json(), { message: /need the degradation\(\) middleware mounted/ })
})

t.test('an unknown option throws at creation with a did-you-mean, the middleware\'s own logger among the known names', async (t) => {
  const features = [{ name: 'a', offAtLevel: 1 }]
  t.throws(() => degradation({ features, evaluateInterval: 100 } as never), {
    code: 'SPILLWAY_DEGRADATION_OPTIONS', message: /^evaluateInterval is not an option; did you mean evaluateIntervalMs\?$/
  })
  t.throws(() => degradation({ features, loger: console } as never), {
    code: 'SPILLWAY_DEGRADATION_OPTIONS', message: /^loger is not an option; did you mean logger\?$/
  })
})

t.test('@fastify/under-pressure\'s names name ours', async (t) => {
  t.throws(() => degradation({ features: [{ name: 'a', offAtLevel: 1 }], maxEventLoopDelay: 100 } as never), {
    code: 'SPILLWAY_DEGRADATION_OPTIONS', message: /^maxEventLoopDelay is an option of @fastify\/under-pressure, not ours; thresholds\.eventLoopDelayMs/
  })
})

t.test('an unknown key in a nested option throws at creation, named by its path', async (t) => {
  t.throws(() => degradation({ features: [{ name: 'a', offAtLevel: 1, fallbak: [] }] } as never), {
    code: 'SPILLWAY_DEGRADATION_OPTIONS', message: /^features\[0\]\.fallbak is not an option; did you mean fallback\?$/
  })
  t.throws(() => degradation({ features: [{ name: 'a', offAtLevel: 1 }], latencyWindow: { windowMS: 1000 } } as never), {
    code: 'SPILLWAY_DEGRADATION_OPTIONS', message: /^latencyWindow\.windowMS is not an option; did you mean windowMs\?$/
  }, 'before the first request creates the meter')
})

t.test('every option known: a full configuration with a logger is created', async (t) => {
  const degrade = degradation({
    features: [{ name: 'a', offAtLevel: 1, fallback: null }], levels: 3, thresholds: { latencyMs: [100, 200, 400] }, recoverRatio: 0.5,
    dwellMs: 1000, minSamples: 5, percentile: 0.9, evaluateIntervalMs: 0, header: 'X-Degraded', latencyWindow: { windowMs: 2000, slices: 4 },
    statusRoute: '/status', now: () => 0, wallNow: () => 0, logger: { warn: () => {}, info: () => {} }
  })
  t.teardown(() => degrade.close())
  t.equal(degrade.degradation.level, 0)
})
