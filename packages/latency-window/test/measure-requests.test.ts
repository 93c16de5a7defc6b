import Fastify from 'fastify'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { excludeFromLatency, meterFastify, replyOf, requestStartedAt } from '../src/fastify/measure-requests.js'
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

t.test('replyOf links a request to its reply from the meter\'s hook on', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  let beforeMeter: unknown = 'not run'
  // Registered before the meter: Fastify runs it first, when there is no link yet.
  app.addHook('onRequest', async (request) => { beforeMeter = replyOf(request) })
  meterFastify(app, 'degradation')
  app.get('/', async (request, reply) => ({ linked: replyOf(request) === reply }))
  const response = await app.inject('/')
  t.same(response.json(), { linked: true })
  t.equal(beforeMeter, undefined)
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

t.test('a request whose client gives up leaves the in-flight count and is timed once', async (t) => {
  // Real sockets on purpose: an abort only exists on a real connection.
  const app = Fastify()
  t.teardown(() => app.close())
  const meter = meterFastify(app, 'load-shedding')
  let finish: () => void = () => {}
  const handlerDone = new Promise<void>((resolve) => { finish = resolve })
  app.get('/slow', async () => {
    await new Promise((resolve) => setTimeout(resolve, 150))
    finish()
    return 'late'
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const client = httpRequest({ host: '127.0.0.1', port, path: '/slow' })
  client.on('error', () => {})
  client.end()
  await new Promise((resolve) => setTimeout(resolve, 40))
  t.equal(meter.inFlight.current, 1)
  client.destroy()
  await handlerDone
  await new Promise((resolve) => setTimeout(resolve, 20))
  t.equal(meter.inFlight.current, 0, 'released on abort')
  t.equal(meter.latency.count, 1, 'timed once, not again when the handler finished')
})
