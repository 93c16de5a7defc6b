import { channel } from 'node:diagnostics_channel'
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import { PRIORITY_RANK, PROBLEM_CONTENT_TYPE, sendRawProblem, type Priority } from '@spillway/latency-window/core'
import { excludeFromLatency, meterFastify, requestStartedAt } from '@spillway/latency-window/fastify'
import type {
  FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, onRequestHookHandler, RouteOptions
} from 'fastify'
import fp from 'fastify-plugin'
import { FRONT_BYPASS, FRONT_DEFAULT_PRIORITY, FrontRoutes } from './front-routes.js'
import type { LoadShedder, LoadSheddingMode, LoadSheddingState } from './load-shedder.js'
import { checkRoutePriority, normalizeOptions, type LoadSheddingOptions } from './options.js'
import { createPriorityResolver, headerOrDefaultRank } from './priority.js'
import { ShedGate } from './shed-gate.js'
import { SHED_CHANNEL, UPDATE_CHANNEL, publishShed } from './channels.js'
import { ADMIT, QUEUED, SHED_DEADLINE, type ShedReason } from './shed-reason.js'

/** What `fastify.loadShedding` exposes. */
export interface LoadSheddingHandle {
  readonly mode: LoadSheddingMode
  /** The live state (a fresh copy on every read). */
  readonly state: LoadSheddingState
  /** 0–1, as published on the shared meter. */
  readonly pressure: number
  /** Runs one control step now (tests, or a caller that drives the controller itself). */
  update(): LoadSheddingState
  /** The framework-free controller. */
  readonly shedder: LoadShedder
}

declare module 'fastify' {
  interface FastifyInstance {
    loadShedding: LoadSheddingHandle
  }
  interface FastifyContextConfig {
    /** The priority of every request to this route (`critical`, `high`, `normal`, `low`). */
    priority?: Priority
    /** `false`: this route is never shed (health checks). */
    loadShedding?: boolean
  }
}

/** `diagnostics_channel` events: one per refused request, one per control step. */
export { SHED_CHANNEL, UPDATE_CHANNEL }
const updateChannel = channel(UPDATE_CHANNEL)

export interface ShedEvent {
  /** Node's request when the front door (`front` option) refused it before Fastify saw it. */
  request: FastifyRequest | IncomingMessage
  priority: Priority
  reason: ShedReason
  /** True in shadow mode: counted, not refused. */
  shadow: boolean
}

// When an admitted request started (the meter's clock), on the raw request until its response
// closes; set by the front door and by the hook alike, and cleared on release.
const kAdmittedAt = Symbol('spillway.loadShedding.admittedAt')
interface AdmittedMessage extends IncomingMessage { [kAdmittedAt]?: number | undefined }

const NAME = '@spillway/load-shedding'

/**
 * A request waiting in the run queue: met by the hook, with its callback that lets it go on; or
 * met by the front door, with Fastify's own request listener to hand it to.
 */
type WaitingRequest =
  | { request: FastifyRequest, reply: FastifyReply, done: () => void }
  | { raw: IncomingMessage, response: ServerResponse, fastifyListener: RequestListener }

const spillwayLoadShedding: FastifyPluginAsync<LoadSheddingOptions> = async function spillwayLoadShedding(fastify, input) {
  const options = normalizeOptions(input)
  const meter = meterFastify(fastify, NAME)
  const now = meter.now
  const shadow = options.mode === 'shadow'
  const gate = new ShedGate<WaitingRequest>(options, {
    now,
    publishPressure: (pressure) => meter.publishPressure('load-shedding', pressure),
    onUpdate: (state) => { if (updateChannel.hasSubscribers) updateChannel.publish(state) },
    queued: {
      run(waiting) {
        // Its time in flight starts now: the wait is the queue's, not the dependency's.
        if ('done' in waiting) {
          admit(waiting.request.raw, waiting.reply.raw, now())
          waiting.done()
        } else {
          admit(waiting.raw, waiting.response, now())
          waiting.fastifyListener(waiting.raw, waiting.response)
        }
      },
      refuse(waiting, rank, reason) {
        if ('done' in waiting) refuse(waiting.request, waiting.reply, rank, reason)
        else refuseInFront(waiting.raw, waiting.response, rank, reason)
      },
      gone: (waiting) => ('done' in waiting ? waiting.request.raw : waiting.raw).socket.destroyed
    }
  })
  const frontRoutes = new FrontRoutes()
  const front = shadow ? undefined : options.front
  const { shedder } = gate
  const update = (): LoadSheddingState => gate.update()

  fastify.addHook('onReady', function startLoadShedding(done) {
    gate.start()
    if (front !== undefined) installFrontDoor()
    done()
  })
  fastify.addHook('onClose', function stopLoadShedding(_instance, done) {
    gate.stop()
    done()
  })

  const { cohortKey, deadlineHeader, statusCode } = options

  function refuse(request: FastifyRequest, reply: FastifyReply, rank: number, reason: number): void {
    excludeFromLatency(request)
    publishShed(request, rank, reason, false)
    reply
      .code(statusCode)
      .header('retry-after', gate.retryAfterSeconds())
      .header('content-type', PROBLEM_CONTENT_TYPE)
      .send(gate.body(reason))
  }

  function refuseInFront(request: IncomingMessage, response: ServerResponse, rank: number, reason: number): void {
    publishShed(request, rank, reason, false)
    sendRawProblem(response, statusCode, gate.retryAfterSeconds(), gate.body(reason), gate.bodyLength(reason))
  }

  /**
   * Puts the decision in front of Fastify: the server's request listener is wrapped, so that a
   * request to a known static route is decided before Fastify builds its request and reply, runs
   * the router and the hooks. Admitted requests go on to Fastify, whose hook lets them through (the
   * front door releases them itself); everything it cannot place goes on undecided.
   */
  function installFrontDoor(): void {
    const server = fastify.server
    const listeners = server.listeners('request') as RequestListener[]
    const fastifyListener = listeners[0]
    // Anything but Fastify's one listener (a custom serverFactory's own wiring): leave it to the hooks.
    if (listeners.length !== 1 || fastifyListener === undefined) return
    const frontKey = front?.cohortKey
    const { priorityHeader, defaultRank } = options
    server.removeListener('request', fastifyListener)
    server.on('request', function spillwayFrontDoor(request: IncomingMessage, response: ServerResponse) {
      const entry = frontRoutes.find(request.method, request.url)
      if (entry === undefined || entry === FRONT_BYPASS) return fastifyListener(request, response)
      const rank = entry === FRONT_DEFAULT_PRIORITY ? headerOrDefaultRank(request.headers, priorityHeader, defaultRank) : entry
      const startedAt = now()
      if (deadlineHeader !== undefined && gate.pastDeadline(request.headers[deadlineHeader])) {
        shedder.countShed(rank, SHED_DEADLINE)
        return refuseInFront(request, response, rank, SHED_DEADLINE)
      }
      const decision = gate.admit(rank, gate.cohort(frontKey?.(request)), startedAt)
      if (decision === QUEUED) {
        const queued = gate.enqueue(rank, startedAt, { raw: request, response, fastifyListener })
        if (queued !== QUEUED) refuseInFront(request, response, rank, queued)
        return
      }
      if (decision !== ADMIT) return refuseInFront(request, response, rank, decision)
      admit(request, response, startedAt)
      fastifyListener(request, response)
    })
  }

  /**
   * An admitted request is released when its response closes ('close' follows 'finish', and comes
   * alone when the client goes away first), not in Fastify's onResponse and onRequestAbort hooks:
   * those make Fastify set up listeners and closures for every request, and an app-wide hook that
   * answers before ours (a 401), or a closing server's 503, would skip them and leak the slot of a
   * request the front door admitted. A client that gives up counts as a drop (AIMD backs off).
   */
  function admit(request: IncomingMessage, response: ServerResponse, at: number): void {
    ;(request as AdmittedMessage)[kAdmittedAt] = at
    response.on('close', releaseOnClose)
  }

  // One listener for every admitted response: no closure per request.
  function releaseOnClose(this: ServerResponse): void {
    const request = this.req as AdmittedMessage
    const at = request[kAdmittedAt]
    if (at === undefined) return
    request[kAdmittedAt] = undefined
    gate.release(now() - at, !this.writableFinished || this.statusCode >= 500)
  }

  const resolvePriority = createPriorityResolver(options)

  function createHook(routeRank: number | undefined): onRequestHookHandler {
    return function spillwayShed(request, reply, done) {
      // Admitted by the front door.
      if ((request.raw as AdmittedMessage)[kAdmittedAt] !== undefined) return done()
      const rank = routeRank ?? resolvePriority(request)
      if (deadlineHeader !== undefined && gate.pastDeadline(request.headers[deadlineHeader])) {
        shedder.countShed(rank, SHED_DEADLINE)
        if (!shadow) return refuse(request, reply, rank, SHED_DEADLINE)
        publishShed(request, rank, SHED_DEADLINE, true)
      }
      const cohort = gate.cohort(cohortKey === undefined ? undefined : cohortKey(request))
      const startedAt = requestStartedAt(request) ?? now()
      const decision = gate.admit(rank, cohort, startedAt)
      if (decision === QUEUED) {
        const queued = gate.enqueue(rank, startedAt, { request, reply, done })
        if (queued !== QUEUED) refuse(request, reply, rank, queued)
        return
      }
      if (decision !== ADMIT) {
        if (!shadow) return refuse(request, reply, rank, decision)
        publishShed(request, rank, decision, true)
      }
      admit(request.raw, reply.raw, startedAt)
      done()
    }
  }

  fastify.addHook('onRoute', function spillwayRoute(route: RouteOptions) {
    const config = route.config
    const frontable = front !== undefined && route.constraints === undefined
    if (config?.loadShedding === false || options.bypass.has(route.url)) {
      if (frontable) frontRoutes.add(route.method, route.url, FRONT_BYPASS)
      return
    }
    const priority = checkRoutePriority(route.url, config?.priority)
    // A priority the user's function picks from Fastify's request cannot be known in front.
    if (frontable && (priority !== undefined || options.priority === undefined)) {
      frontRoutes.add(route.method, route.url, priority === undefined ? FRONT_DEFAULT_PRIORITY : PRIORITY_RANK[priority])
    }
    const hook = createHook(priority === undefined ? undefined : PRIORITY_RANK[priority])
    const existing = route.onRequest
    route.onRequest = existing === undefined ? [hook] : [hook, ...(Array.isArray(existing) ? existing : [existing])]
  })

  const handle: LoadSheddingHandle = {
    mode: options.mode,
    get state() { return shedder.state },
    get pressure() { return shedder.pressure },
    update,
    shedder
  }
  fastify.decorate('loadShedding', handle)

  if (options.statusRoute !== undefined) {
    fastify.get(options.statusRoute, { config: { loadShedding: false } }, async function loadSheddingStatus() {
      return shedder.state
    })
  }
}

export const loadShedding = fp(spillwayLoadShedding, { name: NAME, fastify: '5.x' })
export { spillwayLoadShedding }
export type { FastifyInstance }
