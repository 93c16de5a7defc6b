/**
 * @spillway/degradation over real HTTP and real time: a route whose latency the test raises and
 * lowers. The level must go up at once, features drop in their configured order, the
 * Spillway-Degraded header appears, then the level comes back down one step per dwell time and
 * does not flap.
 */
import t from 'tap'
import degradation, { type DegradationEvent } from '../packages/degradation/src/index.js'
import { DegradationProvider } from '../packages/degradation/src/openfeature-provider.js'
import { Fastify, agent, get, sleep, waitFor as waitUntil } from '../packages/degradation/test/support/http.js'
import { OpenFeature } from '../packages/degradation/test/support/openfeature.js'

t.teardown(() => agent.destroy())

t.test('latency up: level up at once, features off in order, header; latency down: step by step, no flapping', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(degradation, {
    features: [
      { name: 'recommendations', offAtLevel: 1, fallback: [] },
      { name: 'analytics', offAtLevel: 1 },
      { name: 'search_suggestions', offAtLevel: 2, fallback: ['popular'] },
      { name: 'image_processing', offAtLevel: 3 }
    ],
    // Latency only: the event loop of a shared CI machine is not what this test is about.
    thresholds: { latencyMs: [40, 150, 250], eventLoopDelayMs: false, pressure: false },
    percentile: 0.9,
    recoverRatio: 0.5,
    dwellMs: 500,
    minSamples: 5,
    evaluateIntervalMs: 50,
    latencyWindow: { windowMs: 1000, slices: 5 }
  })
  let delayMs = 1
  app.get('/work', async () => {
    await sleep(delayMs)
    return 'done'
  })
  app.get('/page', async (request) => ({
    recommendations: request.feature('recommendations'),
    analytics: request.feature('analytics'),
    search_suggestions: request.feature('search_suggestions'),
    image_processing: request.feature('image_processing')
  }))
  app.get('/recommendations', { config: { feature: 'recommendations' } }, async () => ['personal'])
  const events: (DegradationEvent & { type: 'level', atMs: number })[] = []
  const started = performance.now()
  app.degradation.onEvent((event) => {
    if (event.type === 'level') events.push({ ...event, atMs: performance.now() - started })
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  // An application evaluating the same flag through OpenFeature sees the same answers.
  const domain = `degradation-http-${port}`
  await OpenFeature.setProviderAndWait(domain, new DegradationProvider(app.degradation))
  t.teardown(() => OpenFeature.clearProviders())
  const flags = OpenFeature.getClient(domain)

  // A closed-loop load of 4 clients on /work, for as long as the test runs.
  let running = true
  const clients = Array.from({ length: 4 }, async () => {
    while (running) {
      const response = await get(port, '/work')
      if (response.status !== 200) throw new Error(`/work answered ${response.status}`)
    }
  })
  const waitFor = (what: string, predicate: () => boolean, timeoutMs: number) =>
    waitUntil(`${what} (level ${app.degradation.level})`, predicate, timeoutMs)

  try {
    await sleep(400)
    t.equal(app.degradation.level, 0, 'fast route: level 0')
    let page = await get(port, '/page')
    t.same(JSON.parse(page.body), { recommendations: true, analytics: true, search_suggestions: true, image_processing: true })
    t.equal(page.headers['spillway-degraded'], undefined, 'no header while healthy')
    t.same(JSON.parse((await get(port, '/recommendations')).body), ['personal'])
    t.equal(await flags.getBooleanValue('recommendations', false), true, 'OpenFeature: on while healthy')

    // 60 ms: past the first threshold, with room below the second for a busy machine's timer lag.
    delayMs = 60
    await waitFor('level 1', () => app.degradation.level >= 1, 3000)
    t.equal(app.degradation.level, 1, '60 ms at p90: level 1')
    page = await get(port, '/page')
    t.same(JSON.parse(page.body), { recommendations: false, analytics: false, search_suggestions: true, image_processing: true }, 'level-1 features off first')
    t.equal(page.headers['spillway-degraded'], 'recommendations, analytics')
    t.equal(await flags.getBooleanValue('recommendations', true), false, 'OpenFeature: off under load')
    t.equal(await flags.getBooleanValue('search_suggestions', false), true)
    const gated = await get(port, '/recommendations')
    t.equal(gated.status, 200, 'a gated route answers its fallback, not an error')
    t.same(JSON.parse(gated.body), [])
    t.equal(gated.headers['spillway-degraded'], 'recommendations')

    delayMs = 400
    await waitFor('level 3', () => app.degradation.level === 3, 3000)
    // The requests in flight read as latency as their age grows: the level may pass through 2 on
    // its way, each step at the evaluation that sees its threshold crossed, never one down.
    t.same(events.map((e) => e.to > e.from), events.map(() => true), 'only up while the latency rises')
    t.same(events.slice(0, 2).map((e) => [e.from, e.to]), [[0, 1], [1, events[1]?.to === 2 ? 2 : 3]])
    t.match(events.at(-1), { from: events.length === 2 ? 1 : 2, to: 3, reason: 'latencyMs', threshold: 250 })
    page = await get(port, '/page')
    t.same(JSON.parse(page.body), { recommendations: false, analytics: false, search_suggestions: false, image_processing: false })
    t.equal(page.headers['spillway-degraded'], 'recommendations, analytics, search_suggestions, image_processing')

    const loweredAt = performance.now() - started
    delayMs = 1
    await waitFor('level 0', () => app.degradation.level === 0, 8000)
    const fall = events.filter((e) => e.atMs > loweredAt)
    t.same(fall.map((e) => [e.from, e.to]), [[3, 2], [2, 1], [1, 0]], 'down one level at a time, never back up')
    for (let i = 1; i < fall.length; i++) {
      t.ok((fall[i] as { atMs: number }).atMs - (fall[i - 1] as { atMs: number }).atMs >= 450, `step ${i + 1} waited the dwell time`)
    }
    await sleep(700)
    t.equal(app.degradation.level, 0, 'and stays down')
    page = await get(port, '/page')
    t.equal(page.headers['spillway-degraded'], undefined)
    t.equal(await flags.getBooleanValue('recommendations', false), true, 'OpenFeature: back on after')
    t.ok(app.degradation.fallbacksServed('recommendations') >= 3)
  } finally {
    running = false
    await Promise.all(clients)
  }
})
