/**
 * The shared meter's Express mount: each request is timed and counted once, by whichever Spillway
 * middleware meets it first, through the framework-free timing of `@spillway/latency-window/core`.
 *
 * Express has no server-wide hooks, so the meter is found from the request: one `ServerMeter` per
 * Express application (`req.app`), not per `http.Server` (an app may be served by several servers,
 * or by none, as in tests and serverless adapters). Every Spillway middleware reads the same one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import {
  ServerMeter, excludeFromLatency, markLongLived, requestStartedAt, sharedMeter, startTiming, timedSince,
  type OptionsErrorFactory, type ServerMeterOptions
} from '@spillway/latency-window/core'

export { excludeFromLatency, requestStartedAt }

/** The request as the meter needs it: Express sets `app` on every request it routes. */
export type MeteredRequest = IncomingMessage & { app?: object }

/**
 * One middleware's handle on the meter of the app it serves. The first middleware to meet a request
 * starts its timing; the meter's event-loop sampler runs from the first request until `close()`.
 */
export class RequestMeter {
  readonly #owner: string
  readonly #options: ServerMeterOptions | undefined
  readonly #fail: OptionsErrorFactory | undefined
  readonly #onMeter: ((meter: ServerMeter) => void) | undefined
  #app: object | undefined
  #meter: ServerMeter | undefined
  #retained: ServerMeter | undefined

  /** `onMeter` is called with each app's meter when this middleware meets it (again after it served another app). */
  constructor(owner: string, options?: ServerMeterOptions, fail?: OptionsErrorFactory, onMeter?: (meter: ServerMeter) => void) {
    this.#owner = owner
    this.#options = options
    this.#fail = fail
    this.#onMeter = onMeter
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
    const meter = sharedMeter(app, this.#options, this.#fail)
    this.#app = app
    this.#meter = meter
    this.#onMeter?.(meter)
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
    return timedSince(request) ?? startTiming(this.meterFor(app), request, response)
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
 * A route middleware marking its requests long-lived (long polling, a stream whose headers come
 * late): they never count in flight nor in latency, and hold no load-shedding slot. Mount it on the
 * route, after the app-wide Spillway middlewares: `app.get('/poll', longLived(), handler)`. A
 * response that sends its headers first and then streams (server-sent events) needs no marking.
 */
export function longLived(): (request: MeteredRequest, response: ServerResponse, next: () => void) => void {
  return function spillwayLongLived(request, response, next) {
    // The app's meter is looked up only when no Spillway middleware timed the request yet.
    if (timedSince(request) === undefined) markLongLived(request, response, sharedMeter(request.app ?? DEFAULT_APP))
    else markLongLived(request, response)
    next()
  }
}

/**
 * A middleware that only measures: mount it first (`app.use(measureRequests())`) when the Spillway
 * middlewares are mounted on some routes only, so that every request still counts in the latency
 * the degradation controller judges.
 */
export function measureRequests(options?: ServerMeterOptions): ((request: MeteredRequest, response: ServerResponse, next: () => void) => void) & { close(): void } {
  // Now: the meter itself is created at the first request.
  ServerMeter.checkOptions(options)
  const meter = new RequestMeter('@spillway/express', options)
  const middleware = function spillwayMeasure(request: MeteredRequest, response: ServerResponse, next: () => void): void {
    meter.start(request, response)
    next()
  }
  return Object.assign(middleware, { close: () => meter.close() })
}
