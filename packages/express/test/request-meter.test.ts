import express from 'express'
import t from 'tap'
import { sharedMeter } from '@spillway/latency-window'
import { RequestMeter, excludeFromLatency, measureRequests, requestStartedAt } from '../src/request-meter.js'
import { manualClock, serve } from './helpers/serve.js'

t.test('two middlewares on one app: each request is timed and counted once', async (t) => {
  const clock = manualClock(100)
  const first = new RequestMeter('first', { now: clock.now })
  const second = new RequestMeter('second')
  t.teardown(() => { first.close(); second.close() })
  const app = express()
  const starts: number[] = []
  app.use((req, res, next) => { starts.push(first.start(req, res)); next() })
  app.use((req, res, next) => { starts.push(second.start(req, res)); next() })
  app.get('/', (req, res) => {
    t.equal(sharedMeter(app).inFlight.current, 1, 'counted once in flight')
    t.equal(requestStartedAt(req), 100)
    clock.advance(40)
    res.send('ok')
  })
  const base = await serve(t, app)
  await (await fetch(base)).text()
  const meter = sharedMeter(app)
  t.equal(first.meter, meter)
  t.equal(second.meter, undefined, 'the second never needed to look the meter up')
  t.equal(meter.measuredBy, 'first')
  t.same(starts, [100, 100], 'the second middleware reads the first one\'s start')
  t.equal(meter.latency.count, 1, 'one sample')
  t.equal(meter.latency.max, 40)
  t.equal(meter.inFlight.current, 0, 'released on finish')
})

t.test('released exactly once when the client goes away; aborted requests still count', async (t) => {
  const app = express()
  const measure = measureRequests()
  t.teardown(() => measure.close())
  app.use(measure)
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
  const meter = sharedMeter(app)
  t.equal(meter.inFlight.current, 1)
  controller.abort()
  t.equal(await request, 'aborted')
  await responseClosed
  t.equal(meter.inFlight.current, 0, 'released on close')
  t.equal(meter.latency.count, 1, 'the aborted request counts once')
})

t.test('excludeFromLatency keeps a refusal out of the window but counts it in flight', async (t) => {
  const app = express()
  const measure = measureRequests()
  t.teardown(() => measure.close())
  app.use(measure)
  app.get('/', (req, res) => {
    excludeFromLatency(req)
    res.status(429).end()
  })
  const base = await serve(t, app)
  await (await fetch(base)).text()
  const meter = sharedMeter(app)
  t.equal(meter.latency.count, 0)
  t.equal(meter.inFlight.current, 0)
})

t.test('the first middleware of an app starts the event-loop sampler; close() stops it', async (t) => {
  const app = express()
  const measure = measureRequests({ eventLoop: { intervalMs: 10 } })
  app.use(measure)
  app.get('/', (_req, res) => { res.send('ok') })
  const base = await serve(t, app)
  await (await fetch(base)).text()
  await new Promise((resolve) => setTimeout(resolve, 50))
  const meter = sharedMeter(app)
  t.ok(meter.eventLoop.current.sampledAt > 0, 'sampled')
  measure.close()
  const last = meter.eventLoop.current.sampledAt
  await new Promise((resolve) => setTimeout(resolve, 50))
  t.equal(meter.eventLoop.current.sampledAt, last, 'stopped')
})

t.test('measureRequests(): an unknown option throws when the middleware is created, before any request', async (t) => {
  t.throws(() => measureRequests({ latency: { windowMS: 1000 } } as never), {
    code: 'SPILLWAY_LATENCY_WINDOW_OPTIONS', message: /^latency\.windowMS is not an option; did you mean windowMs\?$/
  })
  t.throws(() => measureRequests({ eventloop: {} } as never), { code: 'SPILLWAY_LATENCY_WINDOW_OPTIONS', message: /^eventloop is not an option; did you mean eventLoop\?$/ })
})
