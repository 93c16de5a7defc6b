/**
 * Degradation's per-request protocol, written once for the Fastify plugin and the Express
 * middleware: the route gate (on → go on; off → count the fallback served, name it in the header,
 * answer the declared value, the fallback function's result, or a 503), `feature()` and
 * `degrade()` for handlers, and which features each request was served without. A mount adds only
 * what differs between frameworks, as a `DegradationMount` built once at registration.
 */
import type { IncomingMessage } from 'node:http'
import { RequestSlot, excludeFromLatency, problemDetails } from '@spillway/latency-window/core'
import type { Degradation } from './degradation.js'
import { UnknownFeatureError } from './errors.js'
import type { FeatureTable } from './features.js'
import type { DegradationConfig } from './options.js'
import { runRouteFallback } from './route-fallback.js'

/** A fallback given at the call site: a value, or a function returning one (sync or async). */
export type CallFallback<T> = T | (() => T | Promise<T>)

/**
 * What differs between frameworks. `Request` is the framework's request (what handlers and
 * fallback functions get), `Response` what a gated route answers through (Fastify's reply,
 * Express's response).
 */
export interface DegradationMount<Request, Response> {
  /** Node's request under the framework's: what the shared meter times. */
  raw(request: Request): IncomingMessage
  /** Sets a header on the response this request will get, if it has not started. */
  setHeader(request: Request, name: string, value: string): void
  /** Whether the answer has started: a fallback function may send its own. */
  sent(response: Response): boolean
  /** Answers with a fallback's value, as the framework answers with a handler's. */
  send(response: Response, value: unknown): void
  /** Answers 503 with `Retry-After` (whole seconds) and a serialized problem+json body. */
  unavailable(response: Response, retryAfterSeconds: number, body: string): void
  /** Logs a fallback that threw (the request's logger where the framework has one). */
  warn(request: Request, payload: object, message: string): void
}

/** A gated route's check, in the framework's shape: `next` is Fastify's `done`, Express's `next`. */
export type FeatureGate<Request, Response> = (request: Request, response: Response, next: () => void) => void

type DeclaredFallback<Request, Response> = (request: Request, response?: Response) => unknown

/**
 * One per mount (a registered plugin, a created middleware), built at registration. The feature
 * on, a request costs one map lookup and one typed-array read (`feature()`), or one typed-array
 * read (a gate): nothing allocated, no listener added.
 */
export class DegradationProtocol<Request extends object, Response> {
  readonly state: Degradation
  readonly #mount: DegradationMount<Request, Response>
  readonly #features: FeatureTable
  readonly #header: string | false
  readonly #dwellMs: number
  /** Per feature, the 503 body of a gated route without a usable fallback, serialized once. */
  readonly #unavailableBodies: readonly string[]
  // The features each request was served without, in the order it hit them (for the header); only
  // a request served a fallback gets one.
  readonly #served = new RequestSlot<number[]>('spillway.degradation.served')

  constructor(state: Degradation, config: DegradationConfig, mount: DegradationMount<Request, Response>) {
    this.state = state
    this.#mount = mount
    this.#features = config.features
    this.#header = config.header
    this.#dwellMs = config.controller.dwellMs
    this.#unavailableBodies = config.features.names.map((name) =>
      JSON.stringify(problemDetails(503, 'Service Unavailable', `${name} is degraded and has no usable fallback`)))
  }

  /** Index of a declared feature, -1 for anything else (a mount turns that into its own options error). */
  indexOf(name: unknown): number {
    return typeof name === 'string' ? this.#features.indexOf.get(name) ?? -1 : -1
  }

  /** `request.feature(name)`: whether the feature is on; a false answer counts and names it. */
  feature(request: Request, name: string): boolean {
    const index = this.#features.indexOf.get(name)
    if (index === undefined) throw new UnknownFeatureError(name)
    if (this.state.isOnAt(index)) return true
    this.#serve(request, index)
    return false
  }

  /**
   * `request.degrade(name, full, fallback?)`: `full()` while on; otherwise the fallback given
   * (`fallbackGiven`, so that an explicit `undefined` is one) or the declared one. A fallback
   * that throws is logged and answered as `null`.
   */
  async degrade<T>(
    request: Request, name: string, full: () => T | Promise<T>, fallback: CallFallback<T> | undefined, fallbackGiven: boolean
  ): Promise<T | null> {
    const index = this.#features.indexOf.get(name)
    if (index === undefined) throw new UnknownFeatureError(name)
    if (this.state.isOnAt(index)) return await full()
    this.#serve(request, index)
    try {
      if (fallbackGiven) return typeof fallback === 'function' ? await (fallback as () => T | Promise<T>)() : fallback as T
      const declared = this.#features.fallbacks[index]
      return (typeof declared === 'function' ? await (declared as DeclaredFallback<Request, Response>)(request) : declared ?? null) as T | null
    } catch (error) {
      this.#mount.warn(request, { err: error, feature: name }, 'spillway degradation: fallback threw, answering null')
      return null
    }
  }

  /** The check of a route gated on the feature at `index`, created once per route. */
  gate(index: number): FeatureGate<Request, Response> {
    const state = this.state
    const spillwayFeatureGate: FeatureGate<Request, Response> = (request, response, next) => {
      if (state.isOnAt(index)) {
        next()
        return
      }
      this.#answerOff(index, request, response)
    }
    return spillwayFeatureGate
  }

  /**
   * Retry-After of a gated route's 503. The feature stays off at least until the level comes down,
   * and that takes `dwellMs` of calm (longer while load stays high): a client told to come back
   * sooner finds it still off. So `dwellMs` is the base, jittered ±50% as the load shedder's, so
   * that refused clients do not all come back in the same second. Whole seconds, at least 1;
   * nearest, where the shedder rounds up: rounding up would move every client half a second
   * later on average, and the base is an estimate rather than a promise.
   */
  retryAfterSeconds(): number {
    return Math.max(1, Math.round(this.#dwellMs * (0.5 + Math.random()) / 1000))
  }

  #answerOff(index: number, request: Request, response: Response): void {
    this.#serve(request, index)
    const mount = this.#mount
    if (this.#features.hasFallback[index] !== true) {
      this.#unavailable(index, request, response)
      return
    }
    const fallback = this.#features.fallbacks[index]
    if (typeof fallback !== 'function') {
      mount.send(response, fallback)
      return
    }
    runRouteFallback(() => (fallback as DeclaredFallback<Request, Response>)(request, response), (value) => {
      if (!mount.sent(response)) mount.send(response, value)
    }, (error) => {
      mount.warn(request, { err: error, feature: this.#features.names[index] }, 'spillway degradation: route fallback threw')
      if (!mount.sent(response)) this.#unavailable(index, request, response)
    })
  }

  #unavailable(index: number, request: Request, response: Response): void {
    // Refused in microseconds: counted in flight, but its latency would drag the window down.
    excludeFromLatency(this.#mount.raw(request))
    this.#mount.unavailable(response, this.retryAfterSeconds(), this.#unavailableBodies[index] as string)
  }

  #serve(request: Request, index: number): void {
    const raw = this.#mount.raw(request)
    let list = this.#served.get(raw)
    if (list === undefined) this.#served.set(raw, list = [index])
    else if (list.includes(index)) return
    else list.push(index)
    this.state.recordFallback(index)
    if (this.#header === false) return
    const { names } = this.#features
    let value = names[list[0] as number] as string
    for (let i = 1; i < list.length; i++) value += `, ${names[list[i] as number] as string}`
    this.#mount.setHeader(request, this.#header, value)
  }
}
