/**
 * Under Express, the degradation middleware found its app's meter only when it was the one to
 * start timing a request: mounted after another Spillway middleware (`measureRequests()`, the
 * load shedder, the rate limiter), it never met the meter, read an idle reading at every
 * evaluation, and so never degraded from load. It now reads its app's meter whoever times.
 */
import t from 'tap'
import { degradation as expressDegradation } from '../../../express/src/degradation.js'
import { measureRequests } from '../../../express/src/request-meter.js'
import { express } from '../../../express/test/helpers/express.js'
import { manualClock, serve } from '../../../express/test/helpers/serve.js'

t.test('mounted after measureRequests(), the level still rises from the latency measured', async (t) => {
  const clock = manualClock(1000)
  const app = express()
  const measure = measureRequests({ now: clock.now })
  const degrade = expressDegradation({
    features: [{ name: 'recommendations', offAtLevel: 1, fallback: [] }],
    thresholds: { latencyMs: [100, 200, 400] }, minSamples: 5, evaluateIntervalMs: 0, now: clock.now,
    logger: { warn: () => {}, info: () => {} }
  })
  t.teardown(() => { measure.close(); degrade.close() })
  app.use(measure)
  app.use(degrade)
  app.get('/slow', (_req, res) => {
    clock.advance(150)
    res.send('ok')
  })
  const base = await serve(t, app)
  for (let i = 0; i < 10; i++) await (await fetch(`${base}/slow`)).text()
  degrade.degradation.evaluate()
  const reading = degrade.degradation.status().reading
  t.equal(reading?.samples, 10, 'the reading is the meter\'s')
  t.ok(Math.abs((reading?.latencyMs ?? 0) - 150) < 5, `p95 ${reading?.latencyMs} ms, about the 150 ms measured`)
  t.equal(degrade.degradation.level, 1)
})
