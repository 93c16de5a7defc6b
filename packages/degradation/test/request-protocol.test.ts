import { IncomingMessage, ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import t from 'tap'
import { ServerMeter, startTiming } from '@spillway/latency-window/core'
import { normalizeDegradationOptions, type DegradationOptions } from '../src/options.js'
import { DegradationProtocol, type DegradationMount } from '../src/request-protocol.js'
import { ServerDegradation } from '../src/server-degradation.js'
import { manualClock } from './helpers/clock.js'

/** The framework's request and response, as the protocol sees them: opaque, with Node's underneath. */
interface FakeRequest { raw: IncomingMessage, headers: Record<string, string> }
interface FakeResponse { sent: boolean, answers: unknown[] }

const silent = { warn: () => {}, info: () => {} }

function recordingMount() {
  const calls: string[] = []
  const mount: DegradationMount<FakeRequest, FakeResponse> = {
    raw: (request) => request.raw,
    setHeader: (request, name, value) => { request.headers[name] = value },
    sent: (response) => response.sent,
    send: (response, value) => {
      response.sent = true
      response.answers.push(value)
    },
    unavailable: (response, retryAfterSeconds, body) => {
      response.sent = true
      response.answers.push({ status: 503, retryAfterSeconds, body: JSON.parse(body) })
    },
    warn: (_request, payload, message) => { calls.push(`warn ${message} ${(payload as { feature: string }).feature}`) }
  }
  return { mount, calls }
}

function setup(extra: Partial<DegradationOptions<FakeRequest, FakeResponse>> = {}) {
  const config = normalizeDegradationOptions({
    features: [
      { name: 'recommendations', offAtLevel: 1, fallback: [] },
      { name: 'analytics', offAtLevel: 1 },
      { name: 'search', offAtLevel: 2, fallback: (request: FakeRequest) => ['popular', request.raw.url] },
      { name: 'images', offAtLevel: 3, fallback: async () => ({ resized: false }) }
    ],
    evaluateIntervalMs: 0,
    ...extra
  })
  const running = new ServerDegradation(config, () => ({ latencyMs: 0, samples: 0, eventLoopDelayMs: 0, utilization: 0, pressure: undefined }), silent)
  const { mount, calls } = recordingMount()
  const protocol = new DegradationProtocol(running.state, config, mount)
  return { protocol, state: running.state, calls }
}

function request(url = '/'): FakeRequest {
  const raw = new IncomingMessage(new Socket())
  raw.url = url
  return { raw, headers: {} }
}

const response = (): FakeResponse => ({ sent: false, answers: [] })
const tick = () => new Promise((resolve) => setImmediate(resolve))

t.test('a gate lets a request through while its feature is on, and touches nothing', async (t) => {
  const { protocol, state } = setup()
  const req = request()
  const res = response()
  let nexts = 0
  protocol.gate(protocol.indexOf('analytics'))(req, res, () => { nexts++ })
  t.equal(nexts, 1)
  t.same(res.answers, [])
  t.same(req.headers, {})
  t.equal(state.fallbacksServed('analytics'), 0)
})

t.test('a gate while off: the declared value, a function\'s result (sync or async), each counted and named', async (t) => {
  const { protocol, state } = setup()
  state.overrides.forceLevel(3)
  const cases: [string, unknown][] = [['recommendations', []], ['search', ['popular', '/page']], ['images', { resized: false }]]
  for (const [name, answer] of cases) {
    const req = request('/page')
    const res = response()
    protocol.gate(protocol.indexOf(name))(req, res, () => t.fail('next while off'))
    await tick()
    t.same(res.answers, [answer], name)
    t.same(req.headers, { 'Spillway-Degraded': name }, name)
    t.equal(state.fallbacksServed(name), 1, name)
  }
})

t.test('a fallback function that answers itself is not answered twice; one that throws or rejects is a logged 503', async (t) => {
  const detail = (name: string) => `${name} is degraded and has no usable fallback`
  const { protocol, state, calls } = setup({
    features: [
      { name: 'sends', offAtLevel: 1, fallback: (_request, reply) => { reply?.answers.push('own'); if (reply !== undefined) reply.sent = true } },
      { name: 'throws', offAtLevel: 1, fallback: () => { throw new Error('boom') } },
      { name: 'rejects', offAtLevel: 1, fallback: async () => { throw new Error('boom') } },
      { name: 'late', offAtLevel: 1, fallback: async (_request, reply) => { if (reply !== undefined) reply.sent = true; throw new Error('after answering') } }
    ]
  })
  state.overrides.forceLevel(1)
  const answers: Record<string, unknown[]> = {}
  for (const name of ['sends', 'throws', 'rejects', 'late']) {
    const res = response()
    protocol.gate(protocol.indexOf(name))(request(), res, () => t.fail('next while off'))
    await tick()
    answers[name] = res.answers
  }
  t.same(answers.sends, ['own'])
  t.match(answers.throws, [{ status: 503, body: { type: 'about:blank', title: 'Service Unavailable', status: 503, detail: detail('throws') } }])
  t.match(answers.rejects, [{ status: 503, body: { detail: detail('rejects') } }])
  t.same(answers.late, [], 'a fallback that failed after answering is only logged')
  t.same(calls, ['throws', 'rejects', 'late'].map((name) => `warn spillway degradation: route fallback threw ${name}`))
})

t.test('without a fallback the gate answers 503, counted in flight but kept out of the latency window', async (t) => {
  const clock = manualClock(1000)
  const meter = new ServerMeter({ now: clock.now })
  const { protocol, state } = setup()
  state.overrides.forceLevel(1)
  const gate = protocol.gate(protocol.indexOf('analytics'))
  const timed = (): [FakeRequest, ServerResponse] => {
    const req = request()
    const raw = new ServerResponse(req.raw)
    startTiming(meter, req.raw, raw)
    return [req, raw]
  }
  const [refused, refusedRaw] = timed()
  const res = response()
  gate(refused, res, () => t.fail('next while off'))
  t.match(res.answers, [{ status: 503, body: { status: 503, detail: 'analytics is degraded and has no usable fallback' } }])
  t.equal(meter.inFlight.current, 1, 'in flight until its response closes')
  clock.advance(5)
  refusedRaw.emit('close')
  t.equal(meter.inFlight.current, 0)
  t.equal(meter.latency.count, 0, 'no latency sample for the refusal')
  // A fallback value served is an answer, and its latency counts.
  const [served, servedRaw] = timed()
  protocol.gate(protocol.indexOf('recommendations'))(served, response(), () => t.fail('next while off'))
  clock.advance(5)
  servedRaw.emit('close')
  t.equal(meter.latency.count, 1)
})

t.test('Retry-After is dwellMs jittered ±50%, in whole seconds, at least 1', async (t) => {
  const random = Math.random
  t.teardown(() => { Math.random = random })
  const bounds = (dwellMs: number) => {
    const { protocol } = setup({ dwellMs })
    Math.random = () => 0
    const low = protocol.retryAfterSeconds()
    Math.random = () => 0.999_999
    const high = protocol.retryAfterSeconds()
    return [low, high]
  }
  t.same(bounds(10_000), [5, 15])
  t.same(bounds(4000), [2, 6])
  t.same(bounds(1000), [1, 1], 'whole seconds cannot spread less than a second')
  t.same(bounds(0), [1, 1], 'never below 1')
})

t.test('feature(): on is true and silent; off names each feature once, in the order asked; undeclared throws', async (t) => {
  const { protocol, state } = setup()
  const req = request()
  t.equal(protocol.feature(req, 'search'), true)
  t.same(req.headers, {})
  state.overrides.forceLevel(2)
  t.equal(protocol.feature(req, 'search'), false)
  t.equal(protocol.feature(req, 'recommendations'), false)
  t.equal(protocol.feature(req, 'search'), false)
  t.equal(protocol.feature(req, 'images'), true)
  t.same(req.headers, { 'Spillway-Degraded': 'search, recommendations' })
  t.equal(state.fallbacksServed('search'), 1, 'counted once per request')
  t.same(request().headers, {}, 'another request starts its own list')
  t.throws(() => protocol.feature(req, 'nope'), { code: 'SPILLWAY_DEGRADATION_UNKNOWN_FEATURE' })
})

t.test('feature() with the header off counts but writes nothing', async (t) => {
  const { protocol, state } = setup({ header: false })
  state.overrides.forceLevel(1)
  const req = request()
  t.equal(protocol.feature(req, 'analytics'), false)
  t.same(req.headers, {})
  t.equal(state.fallbacksServed('analytics'), 1)
})

t.test('degrade(): full() while on; the given fallback (even undefined), else the declared one; a throwing one answers null', async (t) => {
  const { protocol, state, calls } = setup()
  const req = request('/x')
  t.same(await protocol.degrade(req, 'search', () => ['full'], undefined, false), ['full'])
  state.overrides.forceLevel(3)
  t.same(await protocol.degrade(req, 'search', () => ['full'], undefined, false), ['popular', '/x'], 'declared, given the request')
  t.equal(await protocol.degrade(req, 'search', () => ['full'], undefined, true), undefined, 'an explicit undefined is a fallback')
  t.same(await protocol.degrade(req, 'images', () => ({ resized: true }), undefined, false), { resized: false })
  t.equal(await protocol.degrade(req, 'analytics', () => 'full', undefined, false), null, 'no fallback at all: null')
  t.equal(await protocol.degrade(req, 'recommendations', () => ['full'], () => { throw new Error('boom') }, true), null)
  t.same(calls, ['warn spillway degradation: fallback threw, answering null recommendations'])
  t.same(req.headers, { 'Spillway-Degraded': 'search, images, analytics, recommendations' })
  await t.rejects(protocol.degrade(req, 'nope', () => 1, undefined, false), { code: 'SPILLWAY_DEGRADATION_UNKNOWN_FEATURE' })
})

t.test('indexOf: declared names only', async (t) => {
  const { protocol } = setup()
  t.equal(protocol.indexOf('search'), 2)
  t.equal(protocol.indexOf('nope'), -1)
  t.equal(protocol.indexOf(3), -1)
})
