/**
 * The shared meter's per-request protocol, framework-free: each request is timed and counted once,
 * by whichever Spillway mount meets it first (the Fastify hook, an Express middleware, a front
 * door), however many are registered, and released once, on its response's 'close'. What the meter
 * keeps about a request is in a shared `RequestSlot`, so that every copy of this package in a
 * process reads the same requests.
 *
 * A response that is a stream (server-sent events, a piped download: its headers are out while its
 * body is still being written) counts in flight and in latency only until its headers are sent:
 * the meter's sweep notices it and takes it out of the count, and its duration, which measures the
 * client's interest rather than the server's speed, never enters the latency window. A request
 * marked long-lived (long polling, whose headers come only at the end) never counts at all.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { ListedRequest } from './in-flight-requests.js'
import { RequestSlot } from './request-slot.js'
import type { ServerMeter } from './server-meter.js'

/**
 * Where a request stands with its meter: `in flight` (counted, its latency to be recorded), out of
 * the count early as a `streaming` response or a `long-lived` request, or `ended`.
 */
export type TimingState = 'in flight' | 'streaming' | 'long-lived' | 'ended'

/** The meter's record of one request: also its node in the meter's in-flight list. */
export class RequestTiming implements ListedRequest {
  previous: RequestTiming | undefined = undefined
  next: RequestTiming | undefined = undefined
  /** Undefined once the request has ended: it is released exactly once. */
  startedAt: number | undefined
  state: TimingState
  /** Kept out of the latency window (refused in microseconds); it still counts in flight. */
  unmeasured = false
  readonly recordedBefore: number
  readonly meter: ServerMeter
  readonly request: IncomingMessage
  readonly response: ServerResponse

  constructor(meter: ServerMeter, request: IncomingMessage, response: ServerResponse, startedAt: number, state: TimingState) {
    this.meter = meter
    this.request = request
    this.response = response
    this.startedAt = startedAt
    this.state = state
    this.recordedBefore = meter.recorded
  }

  /**
   * Its age says nothing about the server's speed: refused in microseconds (a refusal held back
   * would otherwise read as a slow request), or still receiving its body (`complete` is false until
   * the last byte of an upload has arrived).
   */
  get ageless(): boolean {
    return this.unmeasured || this.request.complete === false
  }

  /** Its headers are out and its body is still being written. */
  get streaming(): boolean {
    return this.response.headersSent && !this.response.writableEnded
  }
}

const timings = new RequestSlot<RequestTiming>('spillway.request.timing', true)

// One listener function for every response, reading its state from the request: timing a request
// creates no closure.
function endTiming(this: ServerResponse): void {
  const timing = timings.get(this.req)
  if (timing === undefined || timing.startedAt === undefined) return
  const { startedAt, meter, state } = timing
  timing.startedAt = undefined
  timing.state = 'ended'
  // A stream or a long-lived request left the count already, and its duration is no latency.
  if (state !== 'in flight') return
  meter.untrack(timing)
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
  return timedSince(request) ?? timeFromNow(meter, request, response, 'in flight')
}

/**
 * When timing began for a request a mount already times (its meter's present time once it
 * ended); undefined for one nobody times yet. For a mount that must find its meter first.
 */
export function timedSince(request: IncomingMessage): number | undefined {
  const known = timings.get(request)
  return known === undefined ? undefined : known.startedAt ?? known.meter.now()
}

function timeFromNow(meter: ServerMeter, request: IncomingMessage, response: ServerResponse, state: TimingState): number {
  const at = meter.now()
  const timing = new RequestTiming(meter, request, response, at, state)
  timings.set(request, timing)
  if (state === 'in flight') meter.track(timing)
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

/**
 * A protection refused this request (a 429): out of the latency window, as `excludeFromLatency`,
 * and given back by every other protection that admitted it before (`ServerMeter.onRefused`), so
 * that a request one protection refuses is charged by none: it holds no load-shedding slot and
 * does not count as admitted. A request nobody times holds nothing anywhere.
 */
export function markRefused(request: IncomingMessage): void {
  const timing = timings.get(request)
  if (timing !== undefined) timing.meter.refused(timing)
}

/**
 * Marks a request long-lived (long polling, a stream whose headers come late): out of the
 * in-flight count and the latency window from now on, and those who hold something for it (the
 * load shedder's slot) are told to let go (`ServerMeter.onDetach`). A request nobody times yet is
 * timed on `meter` when one is given, already out of the count, so that a mount meeting it later
 * counts nothing.
 */
export function markLongLived(request: IncomingMessage, response: ServerResponse, meter?: ServerMeter): void {
  const timing = timings.get(request)
  if (timing === undefined) {
    if (meter !== undefined) timeFromNow(meter, request, response, 'long-lived')
  } else if (timing.state === 'in flight') {
    timing.meter.detach(timing, 'long-lived')
  }
}

/** Where the request stands with the meter that times it; undefined when none does. */
export function timingState(request: IncomingMessage): TimingState | undefined {
  return timings.get(request)?.state
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
