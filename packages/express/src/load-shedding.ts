/**
 * Adaptive, priority-aware load shedding as Express middleware: the options, decisions, 503/429,
 * jittered Retry-After and problem+json bodies of `@spillway/load-shedding`, through its
 * framework-free `SheddingProtocol`. Mount it first, before any body parser, so that a shed request
 * costs its parse and one middleware:
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
import {
  PRIORITIES, PRIORITY_RANK, checkFunction, checkKnownKeys, checkOptionsObject, isPriority, monotonicNow, optionMessage, sendRawProblem,
  startTiming, type Priority
} from '@spillway/latency-window/core'
import {
  LoadSheddingOptionsError,
  SheddingProtocol,
  UPDATE_CHANNEL,
  createPriorityResolver,
  failOption,
  headerOrDefaultRank,
  normalizeOptions,
  urlPath,
  type LoadSheddingMode,
  type LoadSheddingState,
  type PriorityLimiter,
  type SheddingMount,
  type SheddingOptions
} from '@spillway/load-shedding/core'
import { RequestMeter } from './request-meter.js'
import { sendValue } from './respond.js'

/** The plugin's options (same names, same defaults), with Express's request; the front door is `front()`. */
export interface ExpressLoadSheddingOptions extends Omit<SheddingOptions<Request>, 'bypass' | 'front'> {
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

// `satisfies`: an option added to the interface and not here (or the other way round) fails the build.
const FRONT_OPTIONS = Object.keys({ priority: true, cohortKey: true } satisfies Record<keyof FrontOptions, true>)
const ROUTE_OPTIONS = ['priority']

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
  /** The framework-free limiter: threshold, concurrency limit and signals. */
  readonly limiter: PriorityLimiter
  /** Stops the control loop, its event-loop sampler and the shared meter's sampler if this middleware started it. */
  close(): void
}

const updateChannel = channel(UPDATE_CHANNEL)
const NAME = '@spillway/express/load-shedding'

/** Mounted, a refusal is written with Node's API and a request that waited goes on with `next`. */
const middlewareMount: SheddingMount<ServerResponse, NextFunction> = {
  send(response, _response, status, retryAfterSeconds, body, bodyLength) {
    sendRawProblem(response, status, retryAfterSeconds, body, bodyLength)
  },
  subject: (_response, request) => request,
  proceed: (next) => { next() }
}

/** Adaptive, priority-aware load shedding for Express. */
export function loadShedding(input: ExpressLoadSheddingOptions = {}): LoadSheddingMiddleware {
  const given = input as ExpressLoadSheddingOptions & { front?: unknown }
  if (given !== null && typeof given === 'object' && given.front !== undefined) {
    throw failOption(optionMessage('front', given.front, 'absent: put the shedder in front with shed.front(app, { priority?, cohortKey? })'))
  }
  const config = normalizeOptions<Request>(input)
  // A response that turns into a stream, or a long-lived request, lets go of its slot, and so does
  // a request the rate limiter (mounted after this) refuses: on every app's meter this middleware meets.
  const meter = new RequestMeter(NAME, undefined, failOption, (found) => {
    found.onDetach(protocol.releaseHeld)
    found.onRefused(protocol.withdraw)
  })
  const protocol = new SheddingProtocol(config, {
    // The clock of the request start times the meter hands out; the default one before the first request.
    now: () => meter.meter?.now() ?? monotonicNow(),
    publishPressure: (pressure) => meter.meter?.publishPressure('load-shedding', pressure),
    onUpdate: (state) => { if (updateChannel.hasSubscribers) updateChannel.publish(state) },
    sweep: () => { meter.meter?.sweep() }
  })
  const { controller } = protocol
  const { limiter } = controller
  const { cohortKey, statusRoute, bypass } = config
  const resolvePriority = createPriorityResolver(config)

  function gateWith(routeRank: number | undefined): RequestHandler {
    return function spillwayShed(request: Request, response: Response, next: NextFunction): void {
      // Already admitted by this shedder (in front, or mounted on the app and on the route): decided once.
      if (protocol.admitted(request)) return next()
      // The app's meter looked up even when another middleware already times the request: the
      // pressure is published on it.
      const startedAt = startTiming(meter.meterOf(request), request, response)
      if (statusRoute !== undefined && request.method === 'GET' && request.path === statusRoute) {
        response.json(limiter.state)
        return
      }
      if (bypass.size > 0 && bypass.has(request.path)) return next()
      const rank = routeRank ?? resolvePriority(request)
      const key = cohortKey === undefined ? undefined : cohortKey(request)
      if (protocol.handle(middlewareMount, request, response, rank, key, startedAt, response, next)) next()
    }
  }

  function front(app: RequestListener, input: FrontOptions = {}): RequestListener {
    checkFunction('front(app)', app, failOption)
    const frontOptions = checkOptionsObject<FrontOptions>('front() options', input, failOption)
    checkKnownKeys('front()', frontOptions, FRONT_OPTIONS, failOption)
    const priorityOf = frontOptions.priority === undefined
      ? undefined
      : checkFunction<NonNullable<FrontOptions['priority']>>('front().priority', frontOptions.priority, failOption)
    const frontKeyOf = frontOptions.cohortKey === undefined
      ? undefined
      : checkFunction<NonNullable<FrontOptions['cohortKey']>>('front().cohortKey', frontOptions.cohortKey, failOption)
    const { priorityHeader, defaultRank } = config
    const frontMount: SheddingMount<ServerResponse, undefined> = {
      send: middlewareMount.send,
      subject: middlewareMount.subject,
      proceed: (_none, request, response) => { app(request, response) }
    }
    return function spillwayFront(request, response) {
      // The app's meter, as the middlewares inside it will find it once Express sets `req.app`.
      const startedAt = startTiming(meter.meterFor(app), request, response)
      const path = urlPath(request.url)
      if (statusRoute !== undefined && request.method === 'GET' && path === statusRoute) return sendValue(response, 200, limiter.state)
      if (bypass.has(path)) return app(request, response)
      const named = priorityOf?.(request, path)
      const rank = isPriority(named) ? PRIORITY_RANK[named] : headerOrDefaultRank(request.headers, priorityHeader, defaultRank)
      const key = frontKeyOf === undefined ? undefined : frontKeyOf(request)
      if (protocol.handle(frontMount, request, response, rank, key, startedAt, response, undefined)) app(request, response)
    }
  }

  function route(routeOptions: { priority: Priority }): RequestHandler {
    checkKnownKeys('route()', checkOptionsObject('route() options', routeOptions, failOption), ROUTE_OPTIONS, failOption)
    const priority = (routeOptions as Partial<{ priority: unknown }> | undefined)?.priority
    if (!isPriority(priority)) {
      throw new LoadSheddingOptionsError(optionMessage('route().priority', priority, `one of ${PRIORITIES.join(', ')}`))
    }
    return gateWith(PRIORITY_RANK[priority])
  }

  // Express has no "ready": the control loop starts now, on an unref'd timer that `close()` stops.
  controller.start()
  const handle = Object.assign(gateWith(undefined), {
    route,
    front,
    mode: config.mode,
    state: limiter.state,
    pressure: 0,
    update: () => controller.update(),
    limiter,
    close(): void {
      protocol.stop()
      meter.close()
    }
  })
  // Getters: Object.assign would copy the values once.
  Object.defineProperty(handle, 'state', { get: () => limiter.state, enumerable: true })
  Object.defineProperty(handle, 'pressure', { get: () => limiter.pressure, enumerable: true })
  return handle
}
