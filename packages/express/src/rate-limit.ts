/**
 * Token-bucket rate limiting as Express middleware: the options, stores (memory, or Redis through
 * ioredis behind the same fallback), headers and 429 of `@spillway/rate-limit`, decided by its
 * framework-free `RateLimiter`.
 *
 *   const limit = rateLimit({ capacity: 60, refillPerSecond: 1 })
 *   app.use(limit)                                                      // every request
 *   app.post('/login', rateLimit({ capacity: 5, refillPerSecond: 1 / 60, prefix: 'login' }), login)
 *   app.post('/search', limit.route({ cost: 5 }), search)               // or: one limiter, per-route settings
 */
import type { ServerResponse } from 'node:http'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { optionMessage, retryAfterSeconds } from '@spillway/latency-window/core'
import {
  RateLimitCostError,
  RateLimitOptionsError,
  RateLimitStats,
  RateLimiter,
  createStore,
  normalizeOptions,
  routeSettings,
  storeKey,
  type Decision,
  type HeaderWriter,
  type RateLimitOptions,
  type RateLimitSnapshot,
  type RouteLimiter,
  type RouteRateLimitOptions
} from '@spillway/rate-limit'
import { checkLogger, type SpillwayLogger } from './logger.js'
import { RequestMeter, excludeFromLatency } from './request-meter.js'
import { sendProblem, sendValue } from './respond.js'

/** What a route mounted with `limiter.route()` may change: as `config.rateLimit` in Fastify. */
export type ExpressRouteRateLimitOptions = RouteRateLimitOptions<Request>

/**
 * The plugin's options (same names, same defaults), with Express's request and response; no
 * `hook` (a middleware runs where it is mounted). `global: false`: the middleware itself limits
 * nothing, only what is mounted with `limiter.route()`.
 */
export interface ExpressRateLimitOptions extends Omit<RateLimitOptions<Request, Response>, 'hook'> {
  /** Where store outages and recoveries are logged. Default `console`. */
  logger?: SpillwayLogger
}

export interface RateLimitMiddleware extends RequestHandler {
  /** A middleware for one route or router: `true` (or nothing) for this limiter's buckets, or its own settings. */
  route(config?: ExpressRouteRateLimitOptions | true, id?: string): RequestHandler
  /** Counters, store latency percentiles and whether the store is degraded, right now. */
  stats(): RateLimitSnapshot
  readonly store: 'memory' | 'redis'
  readonly degraded: boolean
  /** Settles once a Redis this middleware connects to itself (a URL) is ready, or after 2 s. */
  readonly ready: Promise<void>
  /** Closes the store (and a Redis client it created itself; never yours). */
  close(): Promise<void>
}

const failOption = (message: string): Error => new RateLimitOptionsError(message)

const responseHeaders: HeaderWriter<ServerResponse> = {
  set: (response, name, value) => { response.setHeader(name, value) },
  get: (response, name) => response.getHeader(name)
}

type Options = ReturnType<typeof normalizeOptions>
type ExpressRoute = RouteLimiter & {
  key: (request: Request) => string | number
  cost: number | ((request: Request) => number)
  allowList: ((request: Request, key: string) => boolean) | undefined
}

/** Token-bucket rate limiting for Express, memory or Redis, with the draft RateLimit headers. */
export function rateLimit(input: ExpressRateLimitOptions = {}): RateLimitMiddleware {
  const given = input as ExpressRateLimitOptions & { hook?: unknown }
  if (given !== null && typeof given === 'object' && given.hook !== undefined) {
    // Where an Express middleware decides is where it is mounted.
    throw failOption(optionMessage('hook', given.hook, 'absent: mount the middleware where it should decide (after your auth middleware for a user key)'))
  }
  const options: Options = normalizeOptions(input)
  const logger = checkLogger(given.logger, failOption)
  const stats = new RateLimitStats(options.now)
  const { store, ready } = createStore(options, stats, logger)
  const limiter = new RateLimiter(options, store, stats)
  const meter = new RequestMeter('@spillway/express/rate-limit')
  let routes = 0

  function finish(route: ExpressRoute, request: Request, response: Response, next: NextFunction, key: string, decision: Decision): void {
    limiter.writeHeaders<ServerResponse>(response, responseHeaders, route, decision)
    if (decision.allowed) {
      limiter.admitted()
      next()
      return
    }
    const seconds = retryAfterSeconds(decision.retryAfterMs)
    const context = limiter.refused(route, key, decision, seconds)
    // A refusal in microseconds would drag the shared latency figures down.
    excludeFromLatency(request)
    if (options.onLimited !== undefined) (options.onLimited as unknown as NonNullable<ExpressRateLimitOptions['onLimited']>)(request, response, context)
    if (options.errorResponseBuilder !== undefined) {
      response.setHeader('Retry-After', String(seconds))
      sendValue(response, 429, (options.errorResponseBuilder as unknown as NonNullable<ExpressRateLimitOptions['errorResponseBuilder']>)(request, context))
      return
    }
    sendProblem(response, 429, seconds, limiter.problem(context))
  }

  function limitWith(route: ExpressRoute): RequestHandler {
    return function spillwayRateLimit(request: Request, response: Response, next: NextFunction): void {
      meter.start(request, response)
      const raw = route.key(request)
      const rawKey = typeof raw === 'string' ? raw : String(raw)
      if (route.allowList !== undefined && route.allowList(request, rawKey)) {
        next()
        return
      }
      const key = storeKey(rawKey, options.maxKeyLength)
      const cost = typeof route.cost === 'number' ? route.cost : route.cost(request)
      if (!(typeof cost === 'number' && cost >= 0 && Number.isFinite(cost))) {
        next(new RateLimitCostError(String(cost)))
        return
      }
      const decision = limiter.take(route, key, cost)
      if (!(decision instanceof Promise)) {
        finish(route, request, response, next, key, decision)
        return
      }
      // The store fallback answers every failure itself; should anything still reject, the request
      // passes: a store problem never becomes a 5xx.
      decision.then((d) => {
        try {
          finish(route, request, response, next, key, d)
        } catch (error) {
          next(error)
        }
      }, () => next())
    }
  }

  const passThrough: RequestHandler = function spillwayRateLimitOff(_request, _response, next) { next() }
  const middleware = options.global ? limitWith(limiter.prepare('*', options) as ExpressRoute) : passThrough

  function route(config?: ExpressRouteRateLimitOptions | true, id?: string): RequestHandler {
    if (id !== undefined && (typeof id !== 'string' || id.length === 0 || id.length > 200)) {
      throw failOption(optionMessage('route id', id, 'a string of 1-200 characters'))
    }
    // Route buckets are scoped by this id in Redis: the same code mounts the same routes in the
    // same order on every instance, so the counter agrees across a fleet.
    const routeId = id ?? `route-${++routes}`
    return limitWith(limiter.prepare(routeId, routeSettings(options, config, routeId)) as ExpressRoute)
  }

  const handle = Object.assign(middleware, {
    route,
    stats: () => stats.snapshot(),
    store: limiter.synchronous ? 'memory' as const : 'redis' as const,
    degraded: false,
    ready,
    close: async () => {
      meter.close()
      await limiter.close()
    }
  })
  // A getter: Object.assign would copy the value once.
  Object.defineProperty(handle, 'degraded', { get: () => stats.degraded, enumerable: true })
  return handle
}
