/**
 * The Fastify plugin: reads each route's settings once in `onRoute`, adds one hook to the routes it
 * limits, and decides there — synchronously with the memory store (no Promise, no allocation
 * beyond the header strings), in one Redis round trip otherwise. The decision itself is the
 * framework-free `RateLimiter`'s.
 */
import fp from 'fastify-plugin'
import type {
  FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions
} from 'fastify'
import { PROBLEM_CONTENT_TYPE, retryAfterSeconds } from '@spillway/latency-window/core'
import { excludeFromLatency } from '@spillway/latency-window/fastify'
import { normalizeOptions, routeSettings, type RateLimitOptions, type RouteRateLimitOptions, type RouteSettings } from './options.js'
import { storeKey } from './keys.js'
import { RateLimitStats, type RateLimitSnapshot } from './stats.js'
import type { Decision } from './policy.js'
import { RateLimitCostError } from './errors.js'
import { RateLimiter, createStore, type HeaderWriter, type RouteLimiter } from './rate-limiter.js'

export { RateLimitCostError } from './errors.js'
export { QUOTA_EXCEEDED_TYPE } from './rate-limiter.js'

/** `fastify.rateLimit`. */
export interface RateLimitDecorator {
  /** Counters, store latency percentiles and whether the store is degraded, right now. */
  stats(): RateLimitSnapshot
  /** `'memory'` or `'redis'`. */
  readonly store: 'memory' | 'redis'
  readonly degraded: boolean
}

declare module 'fastify' {
  interface FastifyInstance {
    rateLimit: RateLimitDecorator
  }
  interface FastifyContextConfig {
    /** Per-route overrides, or `false` to leave the route unlimited. */
    rateLimit?: RouteRateLimitOptions | boolean
  }
}

const replyHeaders: HeaderWriter<FastifyReply> = {
  set: (reply, name, value) => { reply.header(name, value) },
  get: (reply, name) => reply.getHeader(name)
}

const spillwayRateLimitPlugin: FastifyPluginAsync<RateLimitOptions> = async function spillwayRateLimit(fastify, input) {
  const options = normalizeOptions(input)
  const stats = new RateLimitStats(options.now)
  const { store, ready } = createStore(options, stats, fastify.log)
  await ready
  const limiter = new RateLimiter(options, store, stats)

  fastify.decorate('rateLimit', {
    stats: () => stats.snapshot(),
    store: limiter.synchronous ? 'memory' : 'redis',
    get degraded() { return stats.degraded }
  } satisfies RateLimitDecorator)

  const settingsByRoute = new Map<string, { config: unknown, settings: RouteSettings }>()
  fastify.addHook('onRoute', (routeOptions) => {
    const config = routeOptions.config?.rateLimit
    if (config === false) return
    if (config === undefined && !options.global) return
    const url = routeOptions.url ?? routeOptions.path
    const id = `${Array.isArray(routeOptions.method) ? routeOptions.method.join(',') : routeOptions.method} ${url}`
    // The HEAD route Fastify adds for a GET runs the same handler: it must draw from the GET's
    // buckets, or HEAD would double a route's budget.
    const twin = routeOptions.method === 'HEAD' ? settingsByRoute.get(`GET ${url}`) : undefined
    const settings = twin !== undefined && twin.config === config ? twin.settings : routeSettings(options, config, id)
    settingsByRoute.set(id, { config, settings })
    addHook(routeOptions, options.hook, limitHook(limiter.prepare(id, settings)))
  })

  fastify.addHook('onClose', async () => {
    await limiter.close()
  })

  function limitHook(route: RouteLimiter) {
    return function spillwayRateLimitHook(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
      const raw = route.key(request)
      const rawKey = typeof raw === 'string' ? raw : String(raw)
      if (route.allowList !== undefined && route.allowList(request, rawKey)) return done()
      const key = storeKey(rawKey, options.maxKeyLength)
      const cost = typeof route.cost === 'number' ? route.cost : route.cost(request)
      if (!(typeof cost === 'number' && cost >= 0 && Number.isFinite(cost))) return done(new RateLimitCostError(String(cost)))
      const decision = limiter.take(route, key, cost)
      if (!(decision instanceof Promise)) return finish(route, request, reply, done, key, decision)
      decision.then((d) => finishAsync(route, request, reply, done, key, d), () => done())
    }
  }

  /** Off the hook's stack Fastify cannot catch a throw (from `onLimited`, say): hand it over. */
  function finishAsync(
    route: RouteLimiter, request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction, key: string, decision: Decision
  ): void {
    try {
      finish(route, request, reply, done, key, decision)
    } catch (error) {
      done(error as Error)
    }
  }

  function finish(
    route: RouteLimiter, request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction, key: string, decision: Decision
  ): void {
    limiter.writeHeaders(reply, replyHeaders, route, decision)
    if (decision.allowed) {
      limiter.admitted()
      return done()
    }
    refuse(route, request, reply, key, decision)
  }

  function refuse(route: RouteLimiter, request: FastifyRequest, reply: FastifyReply, key: string, decision: Decision): void {
    const seconds = retryAfterSeconds(decision.retryAfterMs)
    const context = limiter.refused(route, key, decision, seconds)
    // A refusal in microseconds would drag the shared latency figures down.
    excludeFromLatency(request)
    if (options.onLimited !== undefined) options.onLimited(request, reply, context)
    reply.code(429).header('retry-after', seconds)
    if (options.errorResponseBuilder !== undefined) {
      reply.send(options.errorResponseBuilder(request, context))
      return
    }
    reply.header('content-type', PROBLEM_CONTENT_TYPE).send(limiter.problem(context))
  }
}

function addHook(
  routeOptions: RouteOptions, hook: 'onRequest' | 'preHandler',
  handler: (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => void
): void {
  const existing = routeOptions[hook] as unknown
  const hooks = existing === undefined ? [] : Array.isArray(existing) ? existing : [existing]
  // Limit first: a refused request should not pay for the route's other hooks.
  ;(routeOptions as unknown as Record<string, unknown>)[hook] = [handler, ...hooks]
}

export const spillwayRateLimit = fp(spillwayRateLimitPlugin, { name: '@spillway/rate-limit', fastify: '5.x' })
