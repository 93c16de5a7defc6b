/**
 * The shared meter's per-request protocol, framework-free: each request is timed and counted once,
 * by whichever Spillway mount meets it first (the Fastify hook, an Express middleware, a front
 * door), however many are registered, and released once, on its response's 'close'. What the meter
 * keeps about a request is in a shared `RequestSlot`, so that every copy of this package in a
 * process reads the same requests.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { RequestSlot } from './request-slot.js'
import type { ServerMeter } from './server-meter.js'

interface Timing {
  /** Undefined once the request has ended: it is released exactly once. */
  startedAt: number | undefined
  readonly meter: ServerMeter
  readonly response: ServerResponse
  unmeasured: boolean
}

const timings = new RequestSlot<Timing>('spillway.request.timing', true)

// One listener function for every response, reading its state from the request: timing a request
// creates no closure.
function endTiming(this: ServerResponse): void {
  const timing = timings.get(this.req)
  if (timing === undefined || timing.startedAt === undefined) return
  const { startedAt, meter } = timing
  timing.startedAt = undefined
  meter.inFlight.release()
  // A request whose client gave up still counts: leaving those out would make an overloaded
  // server look healthy.
  if (!timing.unmeasured) {
    const at = meter.now()
    meter.recordLatency(at - startedAt, at)
  }
}

/**
 * Starts timing the request on `meter` unless a Spillway mount already did; answers when timing
 * began, on that meter's clock.
 */
export function startTiming(meter: ServerMeter, request: IncomingMessage, response: ServerResponse): number {
  return timedSince(request) ?? timeFromNow(meter, request, response)
}

/**
 * When timing began for a request a mount already times (its meter's present time once it
 * ended); undefined for one nobody times yet. For a mount that must find its meter first.
 */
export function timedSince(request: IncomingMessage): number | undefined {
  const known = timings.get(request)
  return known === undefined ? undefined : known.startedAt ?? known.meter.now()
}

function timeFromNow(meter: ServerMeter, request: IncomingMessage, response: ServerResponse): number {
  const at = meter.now()
  timings.set(request, { startedAt: at, meter, response, unmeasured: false })
  meter.inFlight.acquire()
  // 'close' alone: Node emits it after 'finish' and also when the client goes away first. `on`,
  // not `once`: `once` wraps the listener in a new closure per call.
  response.on('close', endTiming)
  return at
}

/**
 * Keeps this request's latency out of the window (it still counts in flight until it ends): for
 * requests refused in a few microseconds, whose latency says nothing about the server's.
 */
export function excludeFromLatency(request: IncomingMessage): void {
  const timing = timings.get(request)
  if (timing !== undefined) timing.unmeasured = true
}

/** When the shared meter started timing this request, on the meter's clock; undefined before, and after it ended. */
export function requestStartedAt(request: IncomingMessage): number | undefined {
  return timings.get(request)?.startedAt
}

/**
 * The response of a request the meter times: what request-side code (degradation's
 * `feature()`) writes a header on without a framework's reply.
 */
export function responseOf(request: IncomingMessage): ServerResponse | undefined {
  return timings.get(request)?.response
}
