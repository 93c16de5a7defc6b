/**
 * A gated route's 503 (no usable fallback) is answered in microseconds; counted in the latency
 * window, a burst of them dragged the latency the level is judged on down, and so brought the
 * features back too early. It now counts in flight, as every request does, but adds no latency
 * sample, under Fastify and under Express alike.
 */
import Fastify from 'fastify'
import t from 'tap'
import { meterFastify } from '@spillway/latency-window/fastify'
import { sharedMeter } from '@spillway/latency-window/core'
import degradation from '../../src/plugin.js'
import { degradation as expressDegradation } from '../../../express/src/degradation.js'
import { express } from '../../../express/test/helpers/express.js'
import { manualClock, serve } from '../../../express/test/helpers/serve.js'

const features = [{ name: 'thumbnails', offAtLevel: 1 }]
const REFUSED = 5

t.test('Fastify', async (t) => {
  const clock = manualClock(1000)
  const app = Fastify()
  t.teardown(() => app.close())
  await app.register(degradation, { features, evaluateIntervalMs: 0, now: clock.now })
  const meter = meterFastify(app, 'test')
  const inFlight: number[] = []
  app.addHook('onSend', async () => {
    inFlight.push(meter.inFlight.current)
    clock.advance(1)
  })
  app.get('/thumbnail', { config: { feature: 'thumbnails' } }, async () => 'full')
  app.degradation.overrides.forceLevel(1)
  for (let i = 0; i < REFUSED; i++) t.equal((await app.inject('/thumbnail')).statusCode, 503)
  t.same(inFlight, Array(REFUSED).fill(1), 'each refusal counted in flight while it was answered')
  t.equal(meter.inFlight.current, 0)
  t.equal(meter.latency.count, 0, 'and none added a latency sample')
  app.degradation.overrides.clearLevel()
  t.equal((await app.inject('/thumbnail')).statusCode, 200)
  t.equal(meter.latency.count, 1, 'an answered request still does')
})

t.test('Express', async (t) => {
  const clock = manualClock(1000)
  const app = express()
  const degrade = expressDegradation({ features, evaluateIntervalMs: 0, now: clock.now, logger: { warn: () => {}, info: () => {} } })
  t.teardown(() => degrade.close())
  const inFlight: number[] = []
  app.use(degrade)
  app.use((_req, res, next) => {
    res.on('finish', () => {
      inFlight.push(sharedMeter(app).inFlight.current)
      clock.advance(1)
    })
    next()
  })
  app.get('/thumbnail', degrade.gate('thumbnails'), (_req, res) => { res.send('full') })
  const base = await serve(t, app)
  degrade.degradation.overrides.forceLevel(1)
  for (let i = 0; i < REFUSED; i++) {
    const response = await fetch(`${base}/thumbnail`)
    await response.text()
    t.equal(response.status, 503)
  }
  const meter = sharedMeter(app)
  t.same(inFlight, Array(REFUSED).fill(1), 'each refusal counted in flight while it was answered')
  t.equal(meter.latency.count, 0, 'and none added a latency sample')
  degrade.degradation.overrides.clearLevel()
  t.equal(await (await fetch(`${base}/thumbnail`)).text(), 'full')
  t.equal(meter.latency.count, 1, 'an answered request still does')
})
