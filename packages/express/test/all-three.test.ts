/**
 * The three middlewares mounted together: each request is measured once, the load shedder's
 * pressure reaches the degradation level through the shared meter, and a request refused by one
 * middleware never reaches the next.
 */
import express from 'express'
import t, { type Test } from 'tap'
import { sharedMeter } from '@spillway/latency-window'
import { degradation } from '../src/degradation.js'
import { loadShedding } from '../src/load-shedding.js'
import { rateLimit } from '../src/rate-limit.js'
import { manualClock, serve } from './helpers/serve.js'

const silent = { warn: () => {}, info: () => {} }

function mountAll(t: Test, load: { value: number }, now?: () => number) {
  const app = express()
  const shed = loadShedding({
    intervalMs: 60_000, eventLoop: false, signals: { test: () => load.value },
    gradient2: { initialLimit: 1000 }, maxQueueMs: { high: 1e6, normal: 1e6, low: 1e6 },
    // Steps of eight requests at once, refused and back within milliseconds: not what this case is about.
    pacing: false
  })
  const limit = rateLimit({ capacity: 1000, refillPerSecond: 1000, logger: silent })
  const degrade = degradation({
    features: [{ name: 'recommendations', offAtLevel: 1, fallback: [] }],
    evaluateIntervalMs: 0, minSamples: 1, logger: silent, ...(now === undefined ? {} : { now })
  })
  t.teardown(async () => { shed.close(); degrade.close(); await limit.close() })
  // Degradation first here so that its (injected) clock is the meter's.
  app.use(degrade)
  app.use(shed)
  app.use(limit)
  return { app, shed, limit, degrade }
}

t.test('with all three mounted, each request is timed and counted once', async (t) => {
  const clock = manualClock(1000)
  const { app } = mountAll(t, { value: 0 }, clock.now)
  let inFlightSeen = -1
  app.get('/', (req, res) => {
    inFlightSeen = sharedMeter(app).inFlight.current
    clock.advance(30)
    res.json({ recs: req.feature('recommendations') })
  })
  const base = await serve(t, app)
  for (let i = 0; i < 5; i++) await (await fetch(base)).json()
  const meter = sharedMeter(app)
  t.equal(inFlightSeen, 1, 'one request in flight, counted once')
  t.equal(meter.latency.count, 5, 'five requests, five samples')
  t.equal(meter.latency.max, 30, 'timed from the first middleware')
  t.equal(meter.inFlight.current, 0)
  t.equal(meter.measuredBy, '@spillway/express/degradation', 'the first middleware mounted measures')
})

t.test('the shedder\'s pressure reaches the degradation level; refusals stay out of the latency window', async (t) => {
  const load = { value: 0 }
  const { app, shed, limit, degrade } = mountAll(t, load)
  app.get('/', (req, res) => { res.json({ recs: req.feature('recommendations') }) })
  const base = await serve(t, app)
  await (await fetch(base)).json()
  load.value = 10
  let shedCount = 0
  for (let step = 0; step < 30; step++) {
    const responses = await Promise.all(Array.from({ length: 8 }, () => fetch(base)))
    for (const response of responses) {
      if (response.status === 503) {
        shedCount++
        t.equal(response.headers.get('ratelimit'), null, 'a shed request never reached the rate limiter')
      }
      await response.arrayBuffer()
    }
    shed.update()
  }
  t.ok(shedCount > 0, 'normal traffic was shed')
  t.ok(shed.pressure >= 0.5, `pressure ${shed.pressure}`)
  const meter = sharedMeter(app)
  t.equal(meter.pressure, shed.pressure, 'published on the shared meter')
  t.equal(meter.pressureSource, 'load-shedding')
  degrade.degradation.evaluate()
  t.ok(degrade.degradation.level >= 2, `level ${degrade.degradation.level}: pressure past the second threshold (0.5)`)
  t.equal(degrade.degradation.status().lastChange?.reason, 'pressure', 'raised by the shedder\'s pressure')
  t.ok(meter.latency.count < 1 + 30 * 8, 'shed requests are not in the latency window')
  t.equal(limit.stats().allowed, meter.latency.count, 'exactly the admitted requests were measured')
})
