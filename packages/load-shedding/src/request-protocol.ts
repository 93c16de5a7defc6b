/**
 * The load shedder's per-request protocol, written once for every mount (the Fastify hook, the
 * Fastify front door, the Express middleware, the Express front door): the deadline, the decision
 * (admit, queue, refuse), the refusal (kept out of the latency window, published, answered with
 * the precomputed body and a jittered Retry-After) and the release of an admitted request when its
 * response closes. It works on Node's request and response; a mount adds only what differs, as a
 * `SheddingMount` built once at registration.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { RefusalPacer, RequestSlot, excludeFromLatency, timingState, type Clock, type HeldRefusal } from '@spillway/latency-window/core'
import { publishShed } from './channels.js'
import { QUEUED, SHED_DEADLINE, type Decision, type Refusal } from './decision.js'
import type { LoadSheddingConfig } from './options.js'
import { RefusalBodies } from './refusal-bodies.js'
import { ShedController, type ShedControllerHooks } from './shed-controller.js'

/**
 * What differs between mounts. `H` is what a refusal is sent through (Fastify's reply, or Node's
 * response), `P` how a request that waited in the run queue goes on (Fastify's `done`, Express's
 * `next`, a front door's listener).
 */
export interface SheddingMount<H, P> {
  /** Sends a refusal. */
  send(handle: H, response: ServerResponse, status: number, retryAfterSeconds: number, body: string, bodyLength: string): void
  /** What a shed event names as the request (the framework's request, or Node's). */
  subject(handle: H, request: IncomingMessage): unknown
  /** Lets a request that waited its turn in the run queue go on. */
  proceed(proceed: P, request: IncomingMessage, response: ServerResponse): void
}

/** A request waiting in the run queue: allocated only when one has to wait. */
interface Waiting {
  rank: number
  mount: SheddingMount<unknown, unknown>
  request: IncomingMessage
  response: ServerResponse
  handle: unknown
  proceed: unknown
}

export type SheddingHooks = Omit<ShedControllerHooks, 'queued'>

/** A refusal the pacer holds: allocated only for one that is held. */
class HeldShedRefusal<H> implements HeldRefusal {
  constructor(
    readonly mount: SheddingMount<H, unknown>, readonly handle: H, readonly request: IncomingMessage, readonly response: ServerResponse,
    readonly status: number, readonly retryAfterSeconds: number, readonly body: string, readonly bodyLength: string
  ) {}

  release(): void {
    // The client that gave up while it was held has nobody to answer.
    if (this.response.destroyed) return
    this.mount.send(this.handle, this.response, this.status, this.retryAfterSeconds, this.body, this.bodyLength)
  }
}

export class SheddingProtocol {
  readonly controller: ShedController<Waiting>
  readonly #now: Clock
  readonly #shadow: boolean
  readonly #deadlineHeader: string | undefined
  readonly #refusals: RefusalBodies
  /** Holds refusals to connections that keep coming back; undefined when pacing is off. */
  readonly pacer: RefusalPacer | undefined
  // When each admitted request started (the meter's clock), until its response closes.
  readonly #admittedAt = new RequestSlot<number>('spillway.loadShedding.admittedAt')
  // Its rank, to uncount it should another protection refuse it (`withdraw`).
  readonly #admittedRank = new RequestSlot<number>('spillway.loadShedding.admittedRank')
  // One listener for every admitted response, reading its state from the request: no closure per request.
  readonly #releaseOnClose: (this: ServerResponse) => void
  /**
   * Lets go of an admitted request's slot before its response closes, without a latency sample:
   * the shared meter calls it (`ServerMeter.onDetach`) when the response turned into a stream or
   * the request was marked long-lived. A stream's time to its headers is not how long the server
   * takes to answer, and the rest of it is the client's interest, not the server's work.
   */
  readonly releaseHeld: (request: IncomingMessage) => void
  /**
   * Gives back an admitted request that another protection refused after this one admitted it
   * (the rate limiter: the shared meter calls it, `ServerMeter.onRefused`): its slot, and its
   * count as admitted and served work. It ran no handler, so it is no latency sample either.
   */
  readonly withdraw: (request: IncomingMessage) => void

  constructor(config: LoadSheddingConfig<never>, hooks: SheddingHooks) {
    this.#now = hooks.now
    this.#shadow = config.mode === 'shadow'
    this.#deadlineHeader = config.deadlineHeader
    this.#refusals = new RefusalBodies(config.statusCode, config.minRetryAfterMs, config.maxRetryAfterMs)
    // Real time, whatever clock the meter was given: a held refusal must go out.
    this.pacer = config.pacing === undefined ? undefined : new RefusalPacer(config.pacing)
    this.controller = new ShedController<Waiting>(config, {
      ...hooks,
      queued: {
        // Its time in flight starts now: the wait is the queue's, not the dependency's.
        run: (waiting) => {
          this.#admit(waiting.request, waiting.response, waiting.rank, this.#now())
          waiting.mount.proceed(waiting.proceed, waiting.request, waiting.response)
        },
        refuse: (waiting, rank, refusal) => {
          this.#refuse(waiting.mount, waiting.handle, waiting.request, waiting.response, rank, refusal)
        },
        gone: (waiting) => waiting.request.socket.destroyed
      }
    })
    const admittedAt = this.#admittedAt
    const admittedRank = this.#admittedRank
    const controller = this.controller
    const now = this.#now
    const pacer = this.pacer
    // An answer ends the connection's run of refusals (`RefusalPacer.served`) once it is sent, not
    // when admitted here: a request the rate limiter then refuses was no answer.
    this.#releaseOnClose = function releaseOnClose(this: ServerResponse): void {
      const at = admittedAt.get(this.req)
      if (at === undefined) return
      admittedAt.clear(this.req)
      pacer?.served(this.req)
      // A client that gives up is a loss signal (AIMD backs off), and must not leak its slot.
      controller.release(now() - at, !this.writableFinished || this.statusCode >= 500)
    }
    this.releaseHeld = function releaseHeld(request: IncomingMessage): void {
      if (admittedAt.get(request) === undefined) return
      admittedAt.clear(request)
      pacer?.served(request)
      controller.release(-1, false)
    }
    this.withdraw = function withdraw(request: IncomingMessage): void {
      if (admittedAt.get(request) === undefined) return
      admittedAt.clear(request)
      controller.withdraw(admittedRank.get(request) ?? 0)
    }
  }

  /** Whether this shedder already admitted the request (its front door did, or another mount of it). */
  admitted(request: IncomingMessage): boolean {
    return this.#admittedAt.get(request) !== undefined
  }

  /**
   * Decides for a request of `rank` that started at `startedAt` (the meter's clock): true when it
   * is admitted now (the mount lets it go on); false when it was refused, or waits in the run
   * queue (then `mount.proceed(proceed, …)` is called when its turn comes).
   */
  handle<H, P>(
    mount: SheddingMount<H, P>, request: IncomingMessage, response: ServerResponse, rank: number,
    cohortKey: string | undefined, startedAt: number, handle: H, proceed: P
  ): boolean {
    const controller = this.controller
    let decision: Decision
    if (this.#deadlineHeader !== undefined && controller.pastDeadline(request.headers[this.#deadlineHeader])) {
      // Decided here, not by the threshold: in shadow mode it is counted once, as enforce mode
      // would have refused it, and let through.
      decision = controller.limiter.refuse(rank, SHED_DEADLINE)
    } else {
      decision = controller.acquire(rank, controller.cohort(cohortKey), startedAt)
      if (decision === QUEUED) {
        decision = controller.enqueue(rank, startedAt, { rank, mount: mount as SheddingMount<unknown, unknown>, request, response, handle, proceed })
        if (decision.outcome === 'refuse') this.#refuse(mount, handle, request, response, rank, decision)
        return false
      }
    }
    if (decision.outcome === 'refuse') {
      if (!this.#shadow) {
        this.#refuse(mount, handle, request, response, rank, decision)
        return false
      }
      publishShed(mount.subject(handle, request), rank, decision, true)
    }
    this.#admit(request, response, rank, startedAt)
    return true
  }

  #refuse<H>(
    mount: SheddingMount<H, unknown>, handle: H, request: IncomingMessage, response: ServerResponse, rank: number, refusal: Refusal
  ): void {
    // A refusal in microseconds would drag the shared latency figures down.
    excludeFromLatency(request)
    publishShed(mount.subject(handle, request), rank, refusal, false)
    const refusals = this.#refusals
    const status = refusals.statusCode
    const retryAfter = refusals.retryAfterSeconds(this.controller.limiter.pressure)
    const body = refusals.body(refusal)
    const bodyLength = refusals.bodyLength(refusal)
    const pacer = this.pacer
    const holdMs = pacer === undefined ? 0 : pacer.refused(request)
    if (pacer !== undefined && holdMs > 0) {
      pacer.hold(new HeldShedRefusal(mount, handle, request, response, status, retryAfter, body, bodyLength), holdMs)
      return
    }
    mount.send(handle, response, status, retryAfter, body, bodyLength)
  }

  /** Stops the control loop and sends every held refusal (the server is closing). */
  stop(): void {
    this.controller.stop()
    this.pacer?.flush()
  }

  /**
   * An admitted request is released when its response closes ('close' follows 'finish', and comes
   * alone when the client goes away first), not in a framework's response hooks: those make the
   * framework set up listeners and closures for every request, and an app-wide hook that answers
   * first (a 401), or a closing server's 503, would skip them and leak the slot.
   */
  #admit(request: IncomingMessage, response: ServerResponse, rank: number, at: number): void {
    // Marked long-lived before it was decided (Express's `longLived()` mounted first): it holds no slot.
    if (timingState(request) === 'long-lived') {
      this.pacer?.served(request)
      this.controller.release(-1, false)
      return
    }
    this.#admittedAt.set(request, at)
    this.#admittedRank.set(request, rank)
    response.on('close', this.#releaseOnClose)
  }
}
