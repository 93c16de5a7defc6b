/**
 * Adaptive, priority-aware load shedding as Express middleware: the options, decisions, 503/429,
 * jittered Retry-After and problem+json bodies of `@spillway/load-shedding`, decided by its
 * framework-free `ShedGate`. Mount it first, before any body parser, so that a shed request costs
 * its parse and one middleware:
 *
 *   const shed = loadShedding({ bypass: ['/health'], priority: (req) => req.path.startsWith('/checkout') ? 'high' : undefined })
 *   app.use(shed)
 *   app.use(express.json())
 *   // or per router, each with its own priority:
 *   adminRouter.use(shed.route({ priority: 'low' }))
 */
import { channel } from 'node:diagnostics_channel'
import type { ServerResponse } from 'node:http'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { PRIORITIES, PRIORITY_RANK, isPriority, monotonicNow, optionMessage, type Priority } from '@spillway/latency-window'
import {
  ADMIT,
  QUEUED,
  LoadSheddingOptionsError,
  SHED_CHANNEL,
  SHED_DEADLINE,
  SHED_REASONS,
  ShedGate,
  UPDATE_CHANNEL,
  createPriorityResolver,
  normalizeOptions,
  type LoadShedder,
  type LoadSheddingMode,
  type LoadSheddingOptions,
  type LoadSheddingState
} from '@spillway/load-shedding/core'
import { RequestMeter, excludeFromLatency } from './request-meter.js'
import { sendProblem } from './respond.js'

/** The plugin's options (same names, same defaults), with Express's request. */
export interface ExpressLoadSheddingOptions extends Omit<LoadSheddingOptions, 'cohortKey' | 'priority' | 'bypass'> {
  /** The user or tenant key a request's cohort is hashed from; without it requests are dealt round-robin. */
  cohortKey?: (request: Request) => string | undefined
  /** Priority from the request (its path, its user…), when the mount names none. */
  priority?: (request: Request) => Priority | undefined
  /** Request paths (`req.path`, relative to where the middleware is mounted) never shed. Default `[]`. */
  bypass?: readonly string[]
}

export interface LoadSheddingMiddleware extends RequestHandler {
  /** A middleware for one route or router whose requests all have `priority`. */
  route(options: { priority: Priority }): RequestHandler
  readonly mode: LoadSheddingMode
  /** The live state (a fresh copy on every read). */
  readonly state: LoadSheddingState
  /** 0–1, as published on the shared meter. */
  readonly pressure: number
  /** Runs one control step now (tests, or a caller that drives the controller itself). */
  update(): LoadSheddingState
  /** The framework-free controller. */
  readonly shedder: LoadShedder
  /** Stops the control loop, its event-loop sampler and the shared meter's sampler if this middleware started it. */
  close(): void
}

const shedChannel = channel(SHED_CHANNEL)
const updateChannel = channel(UPDATE_CHANNEL)

const NAME = '@spillway/express/load-shedding'

/** A request waiting in the run queue, with what lets it go on. */
interface WaitingRequest {
  request: Request
  response: Response
  next: NextFunction
}

/** Adaptive, priority-aware load shedding for Express. */
export function loadShedding(input: ExpressLoadSheddingOptions = {}): LoadSheddingMiddleware {
  const options = normalizeOptions(input)
  const meter = new RequestMeter(NAME)
  const shadow = options.mode === 'shadow'
  const gate = new ShedGate<WaitingRequest>(options, {
    now: monotonicNow,
    publishPressure: (pressure) => meter.meter?.publishPressure('load-shedding', pressure),
    onUpdate: (state) => { if (updateChannel.hasSubscribers) updateChannel.publish(state) },
    queued: {
      // Its time in flight starts now: the wait is the queue's, not the dependency's.
      run: ({ request, response, next }) => { admit(request, response, meter.meterOf(request).now(), next) },
      refuse: ({ request, response }, rank, reason) => { refuse(request, response, rank, reason) },
      gone: ({ request }) => request.socket.destroyed
    }
  })
  const { shedder } = gate
  const { cohortKey, deadlineHeader, statusCode, statusRoute, bypass } = options
  const resolvePriority = createPriorityResolver(options) as unknown as (request: Request) => number
  const keyOf = cohortKey as ((request: Request) => string | undefined) | undefined
  // When each admitted request started (the meter's clock), until it is released. Beside the
  // request rather than on it: a property added to an Express request costs microseconds.
  const admittedAt = new WeakMap<object, number>()

  function refuse(request: Request, response: Response, rank: number, reason: number): void {
    excludeFromLatency(request)
    if (shedChannel.hasSubscribers) {
      shedChannel.publish({ request, priority: PRIORITIES[rank] ?? 'normal', reason: SHED_REASONS[reason] ?? 'threshold', shadow: false })
    }
    sendProblem(response, statusCode, gate.retryAfterSeconds(), gate.body(reason))
  }

  function noteShadow(request: Request, rank: number, reason: number): void {
    if (shedChannel.hasSubscribers) {
      shedChannel.publish({ request, priority: PRIORITIES[rank] ?? 'normal', reason: SHED_REASONS[reason] ?? 'threshold', shadow: true })
    }
  }

  // One listener for every admitted response, reading its state from the request: no closure per request.
  function releaseOnEnd(this: ServerResponse): void {
    const request = this.req as Request
    const startedAt = admittedAt.get(request)
    if (startedAt === undefined) return
    admittedAt.delete(request)
    // A client that gives up is a loss signal (AIMD backs off), and must not leak its slot.
    gate.release(meter.meterOf(request).now() - startedAt, !this.writableFinished || this.statusCode >= 500)
  }

  function gateWith(routeRank: number | undefined): RequestHandler {
    return function spillwayShed(request: Request, response: Response, next: NextFunction): void {
      // Already admitted by this shedder (mounted on the app and on the route): decided once.
      if (admittedAt.has(request)) {
        next()
        return
      }
      const startedAt = meter.start(request, response)
      if (statusRoute !== undefined && request.method === 'GET' && request.path === statusRoute) {
        response.json(shedder.state)
        return
      }
      if (bypass.size > 0 && bypass.has(request.path)) {
        next()
        return
      }
      const rank = routeRank ?? resolvePriority(request)
      if (deadlineHeader !== undefined && gate.pastDeadline(request.headers[deadlineHeader])) {
        shedder.countShed(rank, SHED_DEADLINE)
        if (!shadow) return refuse(request, response, rank, SHED_DEADLINE)
        noteShadow(request, rank, SHED_DEADLINE)
      }
      const cohort = gate.cohort(keyOf === undefined ? undefined : keyOf(request))
      const decision = gate.admit(rank, cohort, startedAt)
      if (decision === QUEUED) {
        const queued = gate.enqueue(rank, startedAt, { request, response, next })
        if (queued !== QUEUED) refuse(request, response, rank, queued)
        return
      }
      if (decision !== ADMIT) {
        if (!shadow) return refuse(request, response, rank, decision)
        noteShadow(request, rank, decision)
      }
      admit(request, response, startedAt, next)
    }
  }

  function admit(request: Request, response: Response, startedAt: number, next: NextFunction): void {
    admittedAt.set(request, startedAt)
    // `on`, not `once` (a closure per call); the guard makes the second call a no-op.
    response.on('finish', releaseOnEnd)
    response.on('close', releaseOnEnd)
    next()
  }

  function route(routeOptions: { priority: Priority }): RequestHandler {
    const priority = (routeOptions as Partial<{ priority: unknown }> | undefined)?.priority
    if (!isPriority(priority)) {
      throw new LoadSheddingOptionsError(optionMessage('route().priority', priority, `one of ${PRIORITIES.join(', ')}`))
    }
    return gateWith(PRIORITY_RANK[priority])
  }

  // Express has no "ready": the control loop starts now, on an unref'd timer that `close()` stops.
  gate.start()
  const handle = Object.assign(gateWith(undefined), {
    route,
    mode: options.mode,
    state: shedder.state,
    pressure: 0,
    update: () => gate.update(),
    shedder,
    close(): void {
      gate.stop()
      meter.close()
    }
  })
  // Getters: Object.assign would copy the values once.
  Object.defineProperty(handle, 'state', { get: () => shedder.state, enumerable: true })
  Object.defineProperty(handle, 'pressure', { get: () => shedder.pressure, enumerable: true })
  return handle
}
