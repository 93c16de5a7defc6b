/**
 * The per-request protocol against a recording mount: what it asks of a framework, in which order,
 * on every path (admitted, allow-listed, bad cost, refused, built body, round trip, failed store,
 * throwing `onLimited`). The real mounts run the same cases in test/protocol-rate-limit.test.ts.
 */
import t from 'tap'
import { EventEmitter } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { ServerMeter, startTiming } from '@spillway/latency-window/core'
import { RateLimitProtocol, type RateLimitMount } from '../src/request-protocol.js'
import { RateLimiter } from '../src/rate-limiter.js'
import { normalizeOptions, type RateLimitOptions } from '../src/options.js'
import { MemoryStore } from '../src/memory-store.js'
import { RateLimitStats } from '../src/stats.js'
import type { BucketStore } from '../src/policy.js'

interface FakeRequest { ip: string, headers: Record<string, string>, raw: IncomingMessage }
interface FakeResponse { headers: Record<string, string | number>, calls: string[] }
type Next = (error?: Error) => void

const mount: RateLimitMount<FakeRequest, FakeResponse, Next> = {
  rawRequest: (request) => request.raw,
  setHeader: (response, name, value) => { response.headers[name] = value },
  getHeader: (response, name) => response.headers[name],
  proceed: (next) => { next() },
  fail: (next, error) => { next(error) },
  refuse: (response, seconds) => { response.calls.push(`refuse ${seconds}`) },
  sendProblem: (response, problem) => { response.calls.push(`problem ${JSON.stringify(problem['violated-policies'])}`) },
  sendBody: (response, body) => { response.calls.push(`body ${JSON.stringify(body)}`) }
}

/** A store whose every take rejects, as a store without a fallback of its own does when it fails. */
const rejecting: BucketStore = { take: () => Promise.reject(new Error('ECONNRESET')), close: async () => {} }

function protocolWith(options: RateLimitOptions<FakeRequest, FakeResponse>, store?: BucketStore) {
  const normalized = normalizeOptions<FakeRequest, FakeResponse>({ now: () => 0, ...options })
  const limiter = new RateLimiter(normalized, store ?? new MemoryStore({ now: () => 0 }), new RateLimitStats(() => 0))
  const protocol = new RateLimitProtocol(limiter, mount)
  const route = limiter.prepare('GET /', normalized)
  /** Runs one request; resolves with what the mount saw once the protocol called `next` or answered. */
  const run = async (headers: Record<string, string> = {}, raw = {} as IncomingMessage) => {
    const request: FakeRequest = { ip: '10.0.0.1', headers, raw }
    const response: FakeResponse = { headers: {}, calls: [] }
    let nexted: { error: Error | undefined } | undefined
    protocol.limit(route, request, response, (error) => { nexted = { error } })
    // A round trip resolves within a few microtasks.
    for (let i = 0; i < 10 && nexted === undefined && response.calls.length === 0; i++) await Promise.resolve()
    return { request, response, nexted }
  }
  return { protocol, limiter, route, run }
}

t.test('admitted: headers, counted, next()', async (t) => {
  const { limiter, run } = protocolWith({ capacity: 2 })
  const { response, nexted } = await run()
  t.same(nexted, { error: undefined })
  t.same(response.headers, { 'ratelimit-policy': '"default";q=2;w=2', ratelimit: '"default";r=1;t=1' })
  t.same(response.calls, [])
  t.equal(limiter.stats.allowed, 1)
})

t.test('allow-listed: next(), no headers, not counted', async (t) => {
  const { limiter, run } = protocolWith({ capacity: 1, key: (request) => request.headers['x-key'] ?? request.ip, allowList: ['ops'] })
  for (let i = 0; i < 3; i++) {
    const { response, nexted } = await run({ 'x-key': 'ops' })
    t.same([nexted, response.headers], [{ error: undefined }, {}])
  }
  t.same([limiter.stats.allowed, limiter.stats.limited], [0, 0])
})

t.test('a cost function answering nonsense hands the framework a SPILLWAY_RATE_LIMIT_COST error', async (t) => {
  const { limiter, run } = protocolWith({ capacity: 5, cost: (request) => Number(request.headers['x-units']) })
  const { nexted } = await run({ 'x-units': 'lots' })
  t.match(nexted?.error, { code: 'SPILLWAY_RATE_LIMIT_COST', message: /returned NaN/ })
  t.same((await run({ 'x-units': '4' })).response.headers['ratelimit'], '"default";r=1;t=4', 'a good cost is charged')
  t.equal(limiter.stats.allowed, 1)
})

t.test('refused: headers, onLimited, then 429 and Retry-After, then the problem body; kept out of the latency', async (t) => {
  const seen: string[] = []
  const { limiter, run } = protocolWith({
    capacity: 1, refillPerSecond: 0.25,
    onLimited: (_request, response, context) => {
      seen.push(`onLimited ${context.retryAfterSeconds} ${String(response.headers['ratelimit'])}`)
      t.same(response.calls, [], 'before the status is set')
    }
  })
  const meter = new ServerMeter({ now: () => 0 })
  const timed = async () => {
    const raw = {} as IncomingMessage
    const rawResponse = Object.assign(new EventEmitter(), { req: raw }) as unknown as ServerResponse
    startTiming(meter, raw, rawResponse)
    const result = await run({}, raw)
    rawResponse.emit('close')
    return result
  }
  t.same((await timed()).nexted, { error: undefined })
  t.equal(meter.latency.count, 1, 'an admitted request is measured')
  const { response, nexted } = await timed()
  t.equal(nexted, undefined)
  t.same(response.calls, ['refuse 4', 'problem ["default"]'])
  t.same(seen, ['onLimited 4 "default";r=0;t=4'], 'onLimited first, with the headers already set')
  t.equal(limiter.stats.limited, 1)
  t.equal(meter.latency.count, 1, 'the refusal is not in the latency window')
  t.equal(meter.inFlight.current, 0, 'but it was counted in flight until it ended')
})

t.test('errorResponseBuilder: its value is the body, built after the status is set', async (t) => {
  const { run } = protocolWith({
    capacity: 1, errorResponseBuilder: (request, context) => ({ error: 'slow down', ip: request.ip, retryIn: context.retryAfterSeconds })
  })
  await run()
  t.same((await run()).response.calls, ['refuse 1', 'body {"error":"slow down","ip":"10.0.0.1","retryIn":1}'])
})

t.test('a round trip: the same answers once the store replies', async (t) => {
  const memory = new MemoryStore({ now: () => 0 })
  const remote: BucketStore = { take: async (...args) => memory.take(...args), close: async () => {} }
  const { limiter, run } = protocolWith({ capacity: 1 }, remote)
  t.same((await run()).nexted, { error: undefined })
  t.same((await run()).response.calls, ['refuse 1', 'problem ["default"]'])
  t.same([limiter.stats.allowed, limiter.stats.limited], [1, 1])
})

t.test('a store whose take rejects is decided as the fallback decides, and counted', async (t) => {
  for (const mode of ['open', 'local'] as const) {
    const { limiter, run } = protocolWith({ onStoreError: mode }, rejecting)
    const { response, nexted } = await run()
    t.same(nexted, { error: undefined }, `${mode}: admitted, without an error`)
    t.same(response.headers, {}, `${mode}: no figures to report`)
    t.same([limiter.stats.allowed, limiter.stats.storeErrors, limiter.stats.fallbackDecisions], [1, 1, 1], `${mode}: counted`)
  }
  const { limiter, run } = protocolWith({ onStoreError: 'closed', probeIntervalMs: 2500 }, rejecting)
  const { response, nexted } = await run()
  t.equal(nexted, undefined)
  t.same(response.calls, ['refuse 3', 'problem []'], 'closed: 429 until the next probe would be due')
  t.same([limiter.stats.limited, limiter.stats.storeErrors, limiter.stats.fallbackDecisions], [1, 1, 1])
})

t.test('a throwing onLimited: thrown to the framework on its stack, handed to it after a round trip', async (t) => {
  const onLimited = () => { throw new Error('onLimited broke') }
  const sync = protocolWith({ capacity: 1, onLimited })
  await sync.run()
  t.throws(() => sync.protocol.limit(sync.route, { ip: '10.0.0.1', headers: {}, raw: {} as IncomingMessage }, { headers: {}, calls: [] }, () => {}),
    { message: 'onLimited broke' })
  const memory = new MemoryStore({ now: () => 0 })
  const remote: BucketStore = { take: async (...args) => memory.take(...args), close: async () => {} }
  const later = protocolWith({ capacity: 1, onLimited }, remote)
  await later.run()
  const { nexted, response } = await later.run()
  t.match(nexted?.error, { message: 'onLimited broke' })
  t.same(response.calls, [], 'nothing sent: the framework answers the error')
  t.equal(later.limiter.stats.limited, 1, 'the refusal was counted')
})
