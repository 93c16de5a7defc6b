/**
 * Token-bucket rate limiting as Express middleware: mounting code only. Options, stores, headers,
 * the 429 and the per-request protocol are `@spillway/rate-limit`'s framework-free ones; the mount
 * below answers through Node's response and `res.send`.
 *
 *   const limit = rateLimit({ capacity: 60, refillPerSecond: 1 })
 *   app.use(limit)                                                      // every request
 *   app.post('/login', rateLimit({ capacity: 5, refillPerSecond: 1 / 60, prefix: 'login' }), login)
 *   app.post('/search', limit.route({ cost: 5 }), search)               // or: one limiter, per-route settings
 */
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import { optionMessage } from '@spillway/latency-window/core'
import {
  RateLimitProtocol, createRateLimiter, failOption, normalizeOptions,
  type RateLimitMount, type RateLimitOptions, type RateLimitSnapshot, type RouteLimiter, type RouteRateLimitOptions
} from '@spillway/rate-limit/core'
import { checkLogger, type SpillwayLogger } from './logger.js'
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
  /** Sends the 429s held by pacing, and closes the store (and a Redis client it created itself; never yours). */
  close(): Promise<void>
}

/** The options the middleware adds to the plugin's and reads itself (`satisfies`: all of them). */
const EXPRESS_OPTIONS = Object.keys({ logger: true } satisfies Record<Exclude<keyof ExpressRateLimitOptions, keyof RateLimitOptions<Request, Response>>, true>)

/** Node's response API, and `res.send` for a builder's value: the same under Express 4 and 5. */
export const expressMount: RateLimitMount<Request, Response, NextFunction> = {
  rawRequest: (request) => request,
  setHeader: (response, name, value) => { response.setHeader(name, value) },
  getHeader: (response, name) => response.getHeader(name),
  proceed: (next) => { next() },
  fail: (next, error) => { next(error) },
  refuse: (response, retryAfterSeconds) => { response.statusCode = 429; response.setHeader('retry-after', String(retryAfterSeconds)) },
  sendProblem: (response, problem) => { sendProblem(response, 429, undefined, problem) },
  sendBody: (response, body) => { sendValue(response, 429, body) }
}

/** Token-bucket rate limiting for Express, memory or Redis, with the draft RateLimit headers. */
export function rateLimit(input: ExpressRateLimitOptions = {}): RateLimitMiddleware {
  const given = input as ExpressRateLimitOptions & { hook?: unknown }
  if (given !== null && typeof given === 'object' && given.hook !== undefined) {
    // Where an Express middleware decides is where it is mounted.
    throw failOption(optionMessage('hook', given.hook, 'absent: mount the middleware where it should decide (after your auth middleware for a user key)'))
  }
  const options = normalizeOptions<Request, Response>(input, EXPRESS_OPTIONS)
  const { limiter, ready } = createRateLimiter(options, checkLogger(given.logger, failOption))
  const protocol = new RateLimitProtocol(limiter, expressMount)
  const limitWith = (route: RouteLimiter<Request>): RequestHandler => function spillwayRateLimit(request, response, next) {
    protocol.limit(route, request, response, next)
  }
  let routes = 0

  function route(config?: ExpressRouteRateLimitOptions | true, id?: string): RequestHandler {
    if (id !== undefined && (typeof id !== 'string' || id.length === 0 || id.length > 200)) {
      throw failOption(optionMessage('route id', id, 'a string of 1-200 characters'))
    }
    // Route buckets are scoped by this id in Redis: the same code mounts the same routes in the
    // same order on every instance, so the counter agrees across a fleet.
    const routeId = id ?? `route-${++routes}`
    return limitWith(limiter.prepare(routeId, limiter.routeSettings(config, routeId)))
  }

  // Its own function each time, even with `global: false`: the handle's methods are assigned onto it.
  const middleware: RequestHandler = options.global
    ? limitWith(limiter.prepare('*', options))
    : function spillwayRateLimitOff(_request, _response, next) { next() }
  const handle = Object.assign(middleware, {
    route, ready, stats: () => limiter.stats.snapshot(), close: () => {
      protocol.pacer?.flush()
      return limiter.close()
    }, store: limiter.synchronous ? 'memory' as const : 'redis' as const
  })
  // A getter: Object.assign would copy the value once.
  return Object.defineProperty(handle, 'degraded', { get: () => limiter.stats.degraded, enumerable: true }) as RateLimitMiddleware
}
