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
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { PRIORITIES, PRIORITY_RANK, checkFunction, checkOptionsObject, isPriority, monotonicNow, optionMessage, sendRawProblem, type Priority } from '@spillway/latency-window/core'
import {
  ADMIT,
  QUEUED,
  LoadSheddingOptionsError,
  publishShed,
  urlPath,
  SHED_DEADLINE,
  ShedGate,
  UPDATE_CHANNEL,
  createPriorityResolver,
  headerOrDefaultRank,
  normalizeOptions,
  type LoadShedder,
  type LoadSheddingMode,
  type LoadSheddingOptions,
  type LoadSheddingState
} from '@spillway/load-shedding/core'
import { RequestMeter, excludeFromLatency } from './request-meter.js'
import { sendValue } from './respond.js'

/** The plugin's options (same names, same defaults), with Express's request. */
export interface ExpressLoadSheddingOptions extends Omit<LoadSheddingOptions, 'cohortKey' | 'priority' | 'bypass'> {
  /** The user or tenant key a request's cohort is hashed from; without it requests are dealt round-robin. */
  cohortKey?: (request: Request) => string | undefined
  /** Priority from the request (its path, its user…), when the mount names none. */
  priority?: (request: Request) => Priority | undefined
  /** Request paths (`req.path`, relative to where the middleware is mounted) never shed. Default `[]`. */
  bypass?: readonly string[]
}

/** How `front()` reads a request, before Express has made it an Express request. */
export interface FrontOptions {
  /** Priority from Node's request and its path (the URL without the query). Then the trusted `priorityHeader`, then `defaultPriority`. */
  priority?: (request: IncomingMessage, path: string) => Priority | undefined
  /** The user or tenant key a request's cohort is hashed from; without it requests are dealt round-robin. */
  cohortKey?: (request: IncomingMessage) => string | undefined
}

export interface LoadSheddingMiddleware extends RequestHandler {
  /** A middleware for one route or router whose requests all have `priority`. */
  route(options: { priority: Priority }): RequestHandler
  /**
   * The same shedder in front of the app: a Node `request` listener that decides before Express
   * builds its request and hands admitted requests to `app` —
   * `http.createServer(shed.front(app, { priority: (req, path) => … }))`. Express spends more on a
   * request before its first middleware runs than a refusal costs by itself; in front, a refused
   * request never pays it. `bypass` and `statusRoute` match the path from the URL.
   */
  front(app: RequestListener, options?: FrontOptions): RequestListener
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

const updateChannel = channel(UPDATE_CHANNEL)

const NAME = '@spillway/express/load-shedding'

/** A request waiting in the run queue, with what lets it go on: Express's `next`, or the app `front()` hands it to. */
interface WaitingRequest {
  request: IncomingMessage
  response: ServerResponse
  next: NextFunction | undefined
  app: RequestListener | undefined
}

const failOption = (message: string): Error => new LoadSheddingOptionsError(message)

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
      run: ({ request, response, next, app }) => {
        admit(request, response, meter.meterOf(request).now())
        if (next !== undefined) next()
        else app?.(request, response)
      },
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

  function refuse(request: IncomingMessage, response: ServerResponse, rank: number, reason: number): void {
    excludeFromLatency(request)
    publishShed(request, rank, reason, false)
    sendRawProblem(response, statusCode, gate.retryAfterSeconds(), gate.body(reason), gate.bodyLength(reason))
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
      if (decide(request, response, rank, keyOf === undefined ? undefined : keyOf(request), startedAt, next, undefined)) next()
    }
  }

  /**
   * The decision for a request of `rank`: true when it is admitted now (the caller lets it go on);
   * false when it was refused, or waits in the run queue (then `next`, or `app`, is called when
   * its turn comes).
   */
  function decide(
    request: IncomingMessage, response: ServerResponse, rank: number, key: string | undefined, startedAt: number,
    next: NextFunction | undefined, app: RequestListener | undefined
  ): boolean {
    if (deadlineHeader !== undefined && gate.pastDeadline(request.headers[deadlineHeader])) {
      shedder.countShed(rank, SHED_DEADLINE)
      if (!shadow) {
        refuse(request, response, rank, SHED_DEADLINE)
        return false
      }
      publishShed(request, rank, SHED_DEADLINE, true)
    }
    const decision = gate.admit(rank, gate.cohort(key), startedAt)
    if (decision === QUEUED) {
      const queued = gate.enqueue(rank, startedAt, { request, response, next, app })
      if (queued !== QUEUED) refuse(request, response, rank, queued)
      return false
    }
    if (decision !== ADMIT) {
      if (!shadow) {
        refuse(request, response, rank, decision)
        return false
      }
      publishShed(request, rank, decision, true)
    }
    admit(request, response, startedAt)
    return true
  }

  function admit(request: IncomingMessage, response: ServerResponse, startedAt: number): void {
    admittedAt.set(request, startedAt)
    // 'close' alone: Node emits it after 'finish' and also when the client goes away first.
    response.on('close', releaseOnEnd)
  }

  function front(app: RequestListener, input: FrontOptions = {}): RequestListener {
    checkFunction('front(app)', app, failOption)
    const frontOptions = checkOptionsObject<FrontOptions>('front() options', input, failOption)
    const priorityOf = frontOptions.priority === undefined
      ? undefined
      : checkFunction<NonNullable<FrontOptions['priority']>>('front().priority', frontOptions.priority, failOption)
    const frontKeyOf = frontOptions.cohortKey === undefined
      ? undefined
      : checkFunction<NonNullable<FrontOptions['cohortKey']>>('front().cohortKey', frontOptions.cohortKey, failOption)
    const { priorityHeader, defaultRank } = options
    function rankOf(request: IncomingMessage, path: string): number {
      const named = priorityOf?.(request, path)
      return isPriority(named) ? PRIORITY_RANK[named] : headerOrDefaultRank(request.headers, priorityHeader, defaultRank)
    }
    return function spillwayFront(request, response) {
      // The app's meter, as the middlewares inside it will find it once Express sets `req.app`.
      const startedAt = meter.start(request, response, app)
      const path = urlPath(request.url)
      if (statusRoute !== undefined && request.method === 'GET' && path === statusRoute) {
        sendValue(response, 200, shedder.state)
        return
      }
      if (bypass.has(path)) {
        app(request, response)
        return
      }
      if (decide(request, response, rankOf(request, path), frontKeyOf?.(request), startedAt, undefined, app)) app(request, response)
    }
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
    front,
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
