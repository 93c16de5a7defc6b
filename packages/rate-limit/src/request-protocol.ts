/**
 * The rate limiter's per-request protocol, written once for every framework: the client key, the
 * allow list, the store key, the cost, the take (synchronous with the memory store: no Promise, no
 * closure; one round trip otherwise), the headers, then admit (counted) or refuse (counted, kept
 * out of the shared meter's latency, `onLimited`, 429 with Retry-After and the problem details or
 * `errorResponseBuilder`'s body). A store that fails without an answer of its own is decided as
 * the store fallback decides (`RateLimiter.storeFailed`): counted, never a 5xx.
 *
 * The rate limiter times nothing itself: whatever mount of the shared meter times a request
 * (another Spillway plugin or middleware, `measureRequests()`) keeps its refusals out of the
 * latency window, and the load shedder that admitted it gives its slot back, through
 * `markRefused`, a no-op for a request nobody times.
 *
 * What differs between frameworks is a `RateLimitMount`, one object per framework, built once: the
 * Fastify plugin's answers through Fastify's reply (so that user hooks and serializers see the
 * 429), the Express middleware's through Node's response and `res.send`.
 */
import type { IncomingMessage } from 'node:http'
import {
  RefusalPacer, markRefused, monotonicNow, retryAfterSeconds, type HeldRefusal, type ProblemDetails
} from '@spillway/latency-window/core'
import { RateLimitCostError } from './errors.js'
import { storeKey } from './keys.js'
import type { Decision } from './policy.js'
import type { HeaderWriter, RateLimiter, RouteLimiter } from './rate-limiter.js'

/** What the protocol needs of a framework: `Req`/`Res` its request and response, `Next` its continuation. */
export interface RateLimitMount<Req, Res, Next> extends HeaderWriter<Res> {
  /** Node's request under the framework's: the shared meter knows requests by it. */
  rawRequest(request: Req): IncomingMessage
  /** Lets the request go on (`done()`, `next()`). */
  proceed(next: Next): void
  /** Hands an error to the framework's error handling (`done(error)`, `next(error)`). */
  fail(next: Next, error: Error): void
  /**
   * Status 429 and Retry-After, set before `errorResponseBuilder` runs: should it throw, the
   * framework's error handler still finds a 429 (both default handlers keep a 4xx status).
   */
  refuse(response: Res, retryAfterSeconds: number): void
  /** Sends the problem details as `application/problem+json`. */
  sendProblem(response: Res, problem: ProblemDetails): void
  /** Sends what `errorResponseBuilder` returned, as the framework sends a value. */
  sendBody(response: Res, body: unknown): void
}

/** A 429 the pacer holds, its body already built: allocated only for one that is held. */
class HeldRateLimitRefusal<Res> implements HeldRefusal {
  constructor(
    readonly request: IncomingMessage, readonly mount: RateLimitMount<unknown, Res, unknown>, readonly response: Res,
    readonly body: unknown, readonly built: boolean
  ) {}

  release(): void {
    // The client that gave up while it was held has nobody to answer.
    if (this.request.socket?.destroyed === true) return
    if (this.built) this.mount.sendBody(this.response, this.body)
    else this.mount.sendProblem(this.response, this.body as ProblemDetails)
  }
}

export class RateLimitProtocol<Req, Res, Next> {
  readonly limiter: RateLimiter<Req, Res>
  /** Holds 429s to connections that keep coming back; undefined when pacing is off. */
  readonly pacer: RefusalPacer | undefined
  readonly #mount: RateLimitMount<Req, Res, Next>
  readonly #maxKeyLength: number

  constructor(limiter: RateLimiter<Req, Res>, mount: RateLimitMount<Req, Res, Next>) {
    this.limiter = limiter
    this.#mount = mount
    this.#maxKeyLength = limiter.options.maxKeyLength
    const { pacing } = limiter.options
    // Real time, whatever clock the store was given: a held 429 must go out.
    this.pacer = pacing === undefined ? undefined : new RefusalPacer(pacing, monotonicNow)
  }

  /** Decides one request on a route the limiter prepared at registration. */
  limit(route: RouteLimiter<Req>, request: Req, response: Res, next: Next): void {
    const mount = this.#mount
    const raw = route.key(request)
    const rawKey = typeof raw === 'string' ? raw : String(raw)
    if (route.allowList !== undefined && route.allowList(request, rawKey)) return mount.proceed(next)
    const key = storeKey(rawKey, this.#maxKeyLength)
    const cost = typeof route.cost === 'number' ? route.cost : route.cost(request)
    if (!(typeof cost === 'number' && cost >= 0 && Number.isFinite(cost))) return mount.fail(next, new RateLimitCostError(String(cost)))
    const decision = this.limiter.take(route, key, cost)
    if (!(decision instanceof Promise)) return this.#finish(route, request, response, next, key, decision)
    // The round trip allocates its Promise anyway; these two closures are all it adds.
    decision.then(
      (taken) => { this.#finishLater(route, request, response, next, key, taken) },
      () => { this.#finishLater(route, request, response, next, key, this.limiter.storeFailed(route)) }
    )
  }

  #finish(route: RouteLimiter<Req>, request: Req, response: Res, next: Next, key: string, decision: Decision): void {
    const limiter = this.limiter
    const mount = this.#mount
    limiter.writeHeaders(response, mount, route, decision)
    if (decision.allowed) {
      limiter.admitted()
      this.pacer?.served(mount.rawRequest(request))
      return mount.proceed(next)
    }
    const seconds = retryAfterSeconds(decision.retryAfterMs)
    const context = limiter.refused(route, key, decision, seconds)
    const rawRequest = mount.rawRequest(request)
    // Out of the latency window (a refusal in microseconds would drag it down), and given back by
    // the load shedder, which decided before and must not count it as admitted work.
    markRefused(rawRequest)
    const { onLimited, errorResponseBuilder } = limiter.options
    if (onLimited !== undefined) onLimited(request, response, context)
    mount.refuse(response, seconds)
    // Built now, on the request's stack, where the framework catches what the user's builder throws.
    const built = errorResponseBuilder !== undefined
    const body = built ? errorResponseBuilder(request, context) : limiter.problem(context)
    const pacer = this.pacer
    const holdMs = pacer === undefined ? 0 : pacer.refused(rawRequest)
    if (pacer !== undefined && holdMs > 0) {
      pacer.hold(new HeldRateLimitRefusal(rawRequest, mount as RateLimitMount<unknown, Res, unknown>, response, body, built), holdMs)
    } else if (built) {
      mount.sendBody(response, body)
    } else {
      mount.sendProblem(response, body as ProblemDetails)
    }
  }

  /**
   * Off the mount's stack the framework cannot catch a throw (from `onLimited`, say): hand it over.
   * On the stack it can, as it does for any hook or middleware that throws.
   */
  #finishLater(route: RouteLimiter<Req>, request: Req, response: Res, next: Next, key: string, decision: Decision): void {
    try {
      this.#finish(route, request, response, next, key, decision)
    } catch (error) {
      this.#mount.fail(next, error as Error)
    }
  }
}
