/**
 * The Fastify mount of the load shedder: options read once, `config.priority` and
 * `config.loadShedding` read once per route in `onRoute`, one `onRequest` hook on the routes it
 * guards, and the optional front door (`fastify-front-door.ts`). Every decision, refusal and
 * release is the framework-free `SheddingProtocol`'s.
 */
import { channel } from 'node:diagnostics_channel'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { PRIORITY_RANK, PROBLEM_CONTENT_TYPE, type Priority } from '@spillway/latency-window/core'
import { addRouteHook, meterFastify, requestStartedAt, ROUTE_HOOK_ORDER } from '@spillway/latency-window/fastify'
import type {
  FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction, onRequestHookHandler, RouteOptions
} from 'fastify'
import fp from 'fastify-plugin'
import { SHED_CHANNEL, UPDATE_CHANNEL } from './channels.js'
import type { ShedReason } from './decision.js'
import { failOption } from './errors.js'
import { installFrontDoor } from './fastify-front-door.js'
import { FRONT_BYPASS, FRONT_DEFAULT_PRIORITY, FrontRoutes } from './front-routes.js'
import { checkRoutePriority, normalizeOptions, type SheddingOptions } from './options.js'
import type { PriorityLimiter } from './priority-limiter.js'
import { createPriorityResolver } from './priority.js'
import { SheddingProtocol, type SheddingMount } from './request-protocol.js'
import type { LoadSheddingMode, LoadSheddingState } from './shedding-state.js'

/** The plugin's options; `cohortKey` and `priority` read Fastify's request. */
export type LoadSheddingOptions = SheddingOptions<FastifyRequest>

/** What `fastify.loadShedding` exposes. */
export interface LoadSheddingHandle {
  readonly mode: LoadSheddingMode
  /** The live state (a fresh copy on every read). */
  readonly state: LoadSheddingState
  /** 0–1, as published on the shared meter. */
  readonly pressure: number
  /** Runs one control step now (tests, or a caller that drives the controller itself). */
  update(): LoadSheddingState
  /** The framework-free limiter: threshold, concurrency limit and signals. */
  readonly limiter: PriorityLimiter
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

const NAME = '@spillway/load-shedding'

/** The hook's refusals go through Fastify's reply, so that the app's own hooks and logs see them. */
const hookMount: SheddingMount<FastifyReply, HookHandlerDoneFunction> = {
  send(reply, _response, status, retryAfterSeconds, body) {
    void reply.code(status).header('retry-after', retryAfterSeconds).header('content-type', PROBLEM_CONTENT_TYPE).send(body)
  },
  subject: (reply) => reply.request,
  proceed: (done) => { done() }
}

const spillwayLoadShedding: FastifyPluginAsync<LoadSheddingOptions> = async function spillwayLoadShedding(fastify, input) {
  const config = normalizeOptions<FastifyRequest>(input)
  const meter = meterFastify(fastify, NAME, undefined, failOption)
  const protocol = new SheddingProtocol(config, {
    now: meter.now,
    publishPressure: (pressure) => meter.publishPressure('load-shedding', pressure),
    onUpdate: (state) => { if (updateChannel.hasSubscribers) updateChannel.publish(state) },
    sweep: () => { meter.sweep() }
  })
  // A response that turns into a stream, or a long-lived route's request, lets go of its slot.
  meter.onDetach(protocol.releaseHeld)
  // A request another protection refuses (the rate limiter, which runs after this one) gives its slot back.
  meter.onRefused(protocol.withdraw)
  const { controller } = protocol
  const { limiter } = controller
  const frontRoutes = new FrontRoutes()
  // Shadow mode refuses nothing, so it has nothing to make cheaper in front.
  const front = config.mode === 'shadow' ? undefined : config.front

  fastify.addHook('onReady', function startLoadShedding(done) {
    controller.start()
    if (front !== undefined) installFrontDoor(fastify.server, protocol, frontRoutes, config, front.cohortKey)
    done()
  })
  // Before the server waits for its connections to end: a held refusal would keep one open.
  fastify.addHook('preClose', function sendHeldRefusals(done) {
    protocol.pacer?.flush()
    done()
  })
  fastify.addHook('onClose', function stopLoadShedding(_instance, done) {
    protocol.stop()
    done()
  })

  const { cohortKey } = config
  const resolvePriority = createPriorityResolver(config)
  const now = meter.now

  function createHook(routeRank: number | undefined): onRequestHookHandler {
    return function spillwayShed(request, reply, done) {
      const raw = request.raw
      if (protocol.admitted(raw)) return done()
      const rank = routeRank ?? resolvePriority(request)
      const startedAt = requestStartedAt(request) ?? now()
      const key = cohortKey === undefined ? undefined : cohortKey(request)
      if (protocol.handle(hookMount, raw, reply.raw as ServerResponse, rank, key, startedAt, reply, done)) done()
    }
  }

  fastify.addHook('onRoute', function spillwayRoute(route: RouteOptions) {
    const routeConfig = route.config
    const frontable = front !== undefined && route.constraints === undefined
    if (routeConfig?.loadShedding === false || config.bypass.has(route.url)) {
      if (frontable) frontRoutes.add(route.method, route.url, FRONT_BYPASS)
      return
    }
    const priority = checkRoutePriority(route.url, routeConfig?.priority)
    // A priority the user's function picks from Fastify's request cannot be known in front.
    if (frontable && (priority !== undefined || config.priority === undefined)) {
      frontRoutes.add(route.method, route.url, priority === undefined ? FRONT_DEFAULT_PRIORITY : PRIORITY_RANK[priority])
    }
    const hook = createHook(priority === undefined ? undefined : PRIORITY_RANK[priority])
    addRouteHook(route, 'onRequest', hook, ROUTE_HOOK_ORDER.loadShedding)
  })

  const handle: LoadSheddingHandle = {
    mode: config.mode,
    get state() { return limiter.state },
    get pressure() { return limiter.pressure },
    update: () => controller.update(),
    limiter
  }
  fastify.decorate('loadShedding', handle)

  if (config.statusRoute !== undefined) {
    fastify.get(config.statusRoute, { config: { loadShedding: false } }, async function loadSheddingStatus() {
      return limiter.state
    })
  }
}

export const loadShedding = fp(spillwayLoadShedding, { name: NAME, fastify: '5.x' })
export { spillwayLoadShedding }
export type { FastifyInstance }
