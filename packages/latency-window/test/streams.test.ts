/**
 * Streamed responses and long-lived routes over real HTTP, with real server-sent-event clients:
 * a stream counts in flight and in latency only until its headers are out; a long-lived route
 * never counts.
 */
import Fastify from 'fastify'
import { get } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { meterFastify } from '../src/fastify/measure-requests.js'
import { openEventStream } from './helpers/event-stream.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function fetchText(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent: false }, (response) => {
      let body = ''
      response.setEncoding('utf8')
      response.on('data', (chunk: string) => { body += chunk })
      response.on('end', () => resolve(body))
    }).on('error', reject)
  })
}

t.test('a stream counts until its headers are out, then neither in flight nor in latency', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  // The sampler's timer would sweep on its own: a long interval keeps the sweeps this test's.
  const meter = meterFastify(app, 'test', { eventLoop: { intervalMs: 60_000 } })
  let sendHeaders: () => void = () => {}
  const headersAllowed = new Promise<void>((resolve) => { sendHeaders = resolve })
  let streamClosed: () => void = () => {}
  const closed = new Promise<void>((resolve) => { streamClosed = resolve })
  let handlerEntered: () => void = () => {}
  const entered = new Promise<void>((resolve) => { handlerEntered = resolve })
  app.get('/events', async (request, reply) => {
    handlerEntered()
    await headersAllowed
    reply.hijack()
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
    reply.raw.write('data: hello\n\n')
    const timer = setInterval(() => reply.raw.write('data: tick\n\n'), 20)
    request.raw.on('close', () => { clearInterval(timer); streamClosed() })
  })
  app.get('/fast', async () => 'ok')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo

  const opening = openEventStream(port, '/events')
  await entered
  await sleep(50)
  t.equal(meter.sweep(), 0, 'no headers yet: nothing to detach')
  t.equal(meter.inFlight.current, 1, 'waiting for its headers, it counts in flight')
  t.ok(meter.inFlightLatency(0.5).ageMs >= 45, 'and its age reads as latency')
  sendHeaders()
  const stream = await opening
  t.equal(stream.response.headers['content-type'], 'text/event-stream')
  await stream.received(3)
  t.equal(meter.sweep(), 1, 'headers out, body still coming: a stream')
  t.equal(meter.inFlight.current, 0)
  t.equal(meter.requests.length, 0)
  t.equal(meter.sweep(), 0, 'detached once')

  await sleep(100)
  stream.close()
  await closed
  await sleep(20)
  t.equal(meter.latency.count, 0, 'its duration never entered the window')
  t.equal(await fetchText(port, '/fast'), 'ok')
  await sleep(20)
  t.equal(meter.latency.count, 1, 'an ordinary request still does')
  t.equal(meter.inFlight.current, 0)
})

t.test('the event-loop sampler\'s timer sweeps: nobody has to ask', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const meter = meterFastify(app, 'test', { eventLoop: { intervalMs: 20 } })
  app.get('/events', (request, reply) => {
    reply.hijack()
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream' })
    reply.raw.write('data: hello\n\n')
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const streams = await Promise.all(Array.from({ length: 5 }, () => openEventStream(port, '/events')))
  await Promise.all(streams.map((stream) => stream.received(1)))
  await sleep(80)
  t.equal(meter.inFlight.current, 0, 'five open streams, none in flight')
  for (const stream of streams) stream.close()
})

t.test('a long-lived route never counts in flight nor in latency', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  const meter = meterFastify(app, 'test', { eventLoop: { intervalMs: 60_000 } })
  let inFlightDuringPoll = -1
  app.get('/poll', { config: { longLived: true } }, async () => {
    await sleep(150)
    inFlightDuringPoll = meter.inFlight.current
    return 'news'
  })
  app.get('/slow', { config: { longLived: false } }, async () => {
    await sleep(30)
    return 'ok'
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const poll = fetchText(port, '/poll')
  await sleep(60)
  t.equal(meter.inFlight.current, 0, 'the poll waits, uncounted')
  t.same(meter.inFlightLatency(0.5), { ageMs: 0, samples: 0 }, 'and ageless')
  t.equal(await poll, 'news')
  t.equal(inFlightDuringPoll, 0)
  t.equal(await fetchText(port, '/slow'), 'ok', 'longLived: false is an ordinary route')
  await sleep(20)
  t.equal(meter.latency.count, 1, 'only the ordinary request was timed')
  t.ok(meter.latency.max >= 25)
})

t.test('config.longLived other than a boolean fails at route registration, through the plugin\'s error', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  meterFastify(app, 'test', undefined, (message) => Object.assign(new TypeError(message), { code: 'SPILLWAY_TEST_OPTIONS' }))
  t.throws(
    () => app.get('/poll', { config: { longLived: 'yes' as unknown as boolean } }, async () => 'x'),
    { code: 'SPILLWAY_TEST_OPTIONS', message: 'route GET /poll: config.longLived must be true or false, got "yes"' }
  )
})
