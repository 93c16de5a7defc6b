import Fastify from 'fastify'
import t from 'tap'
import { excludeFromLatency, meterFastify, requestStartedAt } from '../src/fastify/measure-requests.js'
import { manualClock } from './helpers/random.js'

t.test('the first plugin installs the hooks; a request is measured once', async (t) => {
  const clock = manualClock(100)
  const app = Fastify()
  t.teardown(() => app.close())
  const first = meterFastify(app, 'degradation', { now: clock.now })
  const second = meterFastify(app, 'load-shedding')
  t.equal(second, first, 'one meter per server')
  t.equal(first.measuredBy, 'degradation')
  let inFlightInHandler = -1
  app.get('/', async (request) => {
    inFlightInHandler = first.inFlight.current
    t.equal(requestStartedAt(request), 100)
    clock.advance(25)
    return 'ok'
  })
  await app.inject('/')
  t.equal(inFlightInHandler, 1)
  t.equal(first.inFlight.current, 0)
  t.equal(first.latency.count, 1, 'recorded once although two plugins asked for the meter')
  t.equal(first.latency.max, 25)
})

t.test('excluded requests count in flight but not in latency', async (t) => {
  const clock = manualClock()
  const app = Fastify()
  t.teardown(() => app.close())
  const meter = meterFastify(app, 'load-shedding', { now: clock.now })
  app.addHook('onRequest', async (request, reply) => {
    if (request.url === '/shed') {
      excludeFromLatency(request)
      await reply.code(503).send()
    }
  })
  app.get('/shed', async () => 'never')
  await app.inject('/shed')
  t.equal(meter.latency.count, 0)
  t.equal(meter.inFlight.current, 0)
})

t.test('the event-loop sampler runs while the server is open and stops on close', async (t) => {
  const app = Fastify()
  const meter = meterFastify(app, 'degradation')
  await app.ready()
  t.ok(meter.eventLoop.running)
  await app.close()
  t.notOk(meter.eventLoop.running)
})
