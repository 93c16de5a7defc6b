/**
 * The Express counterpart of `@spillway/latency-window/fastify`: each request is timed and counted
 * once, by whichever Spillway middleware sees it first, however many are mounted (a WeakMap entry
 * per request, shared by every copy of this package).
 *
 * Express has no server-wide hooks, so the meter is found from the request: one `ServerMeter` per
 * Express application (`req.app`), not per `http.Server` (an app may be served by several servers,
 * or by none, as in tests and serverless adapters). Every Spillway middleware reads the same one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { sharedMeter, type ServerMeter, type ServerMeterOptions } from '@spillway/latency-window'

/** What the meter keeps about one request, from its first Spillway middleware to its end. */
interface Measurement {
  startedAt: number | undefined
  meter: ServerMeter
  unmeasured: boolean
}

// Kept beside the request, not on it: Express gives every request a new prototype
// (`setPrototypeOf(req, app.request)`), after which each property added to it costs microseconds
// (measured: ≈ 2.5 µs per property, against ≈ 0.2 µs for a WeakMap entry). On globalThis under a
// registered symbol, so that every copy of this package in a process reads the same requests.
const REGISTRY = Symbol.for('spillway.express.measurements')
const measurements: WeakMap<object, Measurement> =
  ((globalThis as { [REGISTRY]?: WeakMap<object, Measurement> })[REGISTRY] ??= new WeakMap())

/** The request as the meter needs it: Express sets `app` on every request it routes. */
export type MeteredRequest = IncomingMessage & { app?: object }

// One listener function for every response, reading its state from the request, so that measuring
// a request creates no closure.
function endMeasurement(this: ServerResponse): void {
  const measurement = measurements.get(this.req)
  // Cleared on the end, so that a request is released exactly once.
  if (measurement === undefined || measurement.startedAt === undefined) return
  const { startedAt, meter } = measurement
  measurement.startedAt = undefined
  meter.inFlight.release()
  // An aborted request still counts: leaving out the requests clients gave up on would make an
  // overloaded server look healthy.
  if (!measurement.unmeasured) {
    const at = meter.now()
    meter.recordLatency(at - startedAt, at)
  }
}

/**
 * One middleware's handle on the meter of the app it serves. The first middleware to meet a request
 * starts its timing; the meter's event-loop sampler runs from the first request until `close()`.
 */
export class RequestMeter {
  readonly #owner: string
  readonly #options: ServerMeterOptions | undefined
  #app: object | undefined
  #meter: ServerMeter | undefined
  #retained: ServerMeter | undefined

  constructor(owner: string, options?: ServerMeterOptions) {
    this.#owner = owner
    this.#options = options
  }

  /** The meter this middleware last served, undefined before its first request. */
  get meter(): ServerMeter | undefined {
    return this.#meter
  }

  /** The meter of the request's app (cached: one comparison per request after the first). */
  meterOf(request: MeteredRequest): ServerMeter {
    return this.meterFor(request.app ?? DEFAULT_APP)
  }

  /** The meter of `app` (cached: one comparison per request after the first). */
  meterFor(app: object): ServerMeter {
    if (app === this.#app) return this.#meter as ServerMeter
    const meter = sharedMeter(app, this.#options)
    this.#app = app
    this.#meter = meter
    // The first middleware of an app owns the event-loop sampler; the meter's unref'd timer never
    // keeps the process alive, and `close()` stops it.
    if (meter.claimMeasurement(this.#owner)) {
      meter.eventLoop.retain()
      this.#retained = meter
    }
    return meter
  }

  /**
   * Starts timing the request unless another Spillway middleware already did; answers when timing
   * began, on the meter's clock. `app`: whose meter, when Express has not yet set `request.app`.
   */
  start(request: MeteredRequest, response: ServerResponse, app: object = request.app ?? DEFAULT_APP): number {
    const known = measurements.get(request)
    if (known !== undefined) return known.startedAt ?? known.meter.now()
    const meter = this.meterFor(app)
    const at = meter.now()
    measurements.set(request, { startedAt: at, meter, unmeasured: false })
    meter.inFlight.acquire()
    // 'close' alone: Node emits it after 'finish' and also when the client goes away first. `on`,
    // not `once`: `once` wraps the listener in a new closure per call.
    response.on('close', endMeasurement)
    return at
  }

  /** Stops the event-loop sampler this middleware started, if it started one. */
  close(): void {
    this.#retained?.eventLoop.release()
    this.#retained = undefined
  }
}

// Requests that reach a middleware outside Express (plain `http` handlers, tests) share one meter.
const DEFAULT_APP = {}

/**
 * Keeps this request's latency out of the window (it still counts in flight until it ends): for
 * requests refused in a few microseconds, whose latency says nothing about the server's.
 */
export function excludeFromLatency(request: IncomingMessage): void {
  const measurement = measurements.get(request)
  if (measurement !== undefined) measurement.unmeasured = true
}

/** When the shared meter started timing this request, on the meter's clock. */
export function requestStartedAt(request: IncomingMessage): number | undefined {
  return measurements.get(request)?.startedAt
}

/**
 * A middleware that only measures: mount it first (`app.use(measureRequests())`) when the Spillway
 * middlewares are mounted on some routes only, so that every request still counts in the latency
 * the degradation controller judges.
 */
export function measureRequests(options?: ServerMeterOptions): ((request: MeteredRequest, response: ServerResponse, next: () => void) => void) & { close(): void } {
  const meter = new RequestMeter('@spillway/express', options)
  const middleware = function spillwayMeasure(request: MeteredRequest, response: ServerResponse, next: () => void): void {
    meter.start(request, response)
    next()
  }
  return Object.assign(middleware, { close: () => meter.close() })
}
