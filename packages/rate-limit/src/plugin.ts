/**
 * The Fastify plugin: mounting code only. It reads each route's settings once in `onRoute`, adds
 * one hook to the routes it limits, and hands each request to the framework-free protocol
 * (`request-protocol.ts`) with the Fastify mount below, which answers through Fastify's reply.
 */
import fp from 'fastify-plugin'
import type {
  FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction
} from 'fastify'
import { PROBLEM_CONTENT_TYPE } from '@spillway/latency-window/core'
import { addRouteHook, ROUTE_HOOK_ORDER } from '@spillway/latency-window/fastify'
import { normalizeOptions, type RouteSettings } from './options.js'
import type * as core from './options.js'
import type { KeyGenerator as CoreKeyGenerator } from './keys.js'
import type { RateLimitSnapshot } from './stats.js'
import { createRateLimiter } from './create-store.js'
import type { RouteLimiter } from './rate-limiter.js'
import { RateLimitProtocol, type RateLimitMount } from './request-protocol.js'

/** The options, with Fastify's request and reply (`@spillway/express` states them with Express's). */
export type RateLimitOptions<Req = FastifyRequest, Res = FastifyReply> = core.RateLimitOptions<Req, Res>
export type RouteRateLimitOptions<Req = FastifyRequest> = core.RouteRateLimitOptions<Req>
export type KeyGenerator<Req = FastifyRequest> = CoreKeyGenerator<Req>
export type CostFunction<Req = FastifyRequest> = core.CostFunction<Req>
export type AllowListFunction<Req = FastifyRequest> = core.AllowListFunction<Req>

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

/** Everything through Fastify's reply, so that user hooks and serializers see the 429 too. */
export const fastifyMount: RateLimitMount<FastifyRequest, FastifyReply, HookHandlerDoneFunction> = {
  rawRequest: (request) => request.raw,
  setHeader: (reply, name, value) => { reply.header(name, value) },
  getHeader: (reply, name) => reply.getHeader(name),
  proceed: (done) => { done() },
  fail: (done, error) => { done(error) },
  refuse: (reply, retryAfterSeconds) => { reply.code(429).header('retry-after', retryAfterSeconds) },
  sendProblem: (reply, problem) => { reply.header('content-type', PROBLEM_CONTENT_TYPE).send(problem) },
  sendBody: (reply, body) => { reply.send(body) }
}

const spillwayRateLimitPlugin: FastifyPluginAsync<RateLimitOptions> = async function spillwayRateLimit(fastify, input) {
  const options = normalizeOptions<FastifyRequest, FastifyReply>(input)
  const { limiter, ready } = createRateLimiter(options, fastify.log)
  await ready
  const protocol = new RateLimitProtocol(limiter, fastifyMount)

  fastify.decorate('rateLimit', {
    stats: () => limiter.stats.snapshot(),
    store: limiter.synchronous ? 'memory' : 'redis',
    get degraded() { return limiter.stats.degraded }
  } satisfies RateLimitDecorator)

  const settingsByRoute = new Map<string, { config: unknown, settings: RouteSettings<FastifyRequest> }>()
  fastify.addHook('onRoute', (routeOptions) => {
    const config = routeOptions.config?.rateLimit
    if (config === false) return
    if (config === undefined && !options.global) return
    const url = routeOptions.url ?? routeOptions.path
    const id = `${Array.isArray(routeOptions.method) ? routeOptions.method.join(',') : routeOptions.method} ${url}`
    // The HEAD route Fastify adds for a GET runs the same handler: it must draw from the GET's
    // buckets, or HEAD would double a route's budget.
    const twin = routeOptions.method === 'HEAD' ? settingsByRoute.get(`GET ${url}`) : undefined
    const settings = twin !== undefined && twin.config === config ? twin.settings : limiter.routeSettings(config, id)
    settingsByRoute.set(id, { config, settings })
    // Limit first: a refused request should not pay for the route's other hooks.
    addRouteHook(routeOptions, options.hook, limitHook(protocol, limiter.prepare(id, settings)), ROUTE_HOOK_ORDER.rateLimit)
  })

  // Before the server waits for its connections to end: a held 429 would keep one open.
  fastify.addHook('preClose', function sendHeldRefusals(done) {
    protocol.pacer?.flush()
    done()
  })
  fastify.addHook('onClose', async () => {
    await limiter.close()
  })
}

function limitHook(protocol: RateLimitProtocol<FastifyRequest, FastifyReply, HookHandlerDoneFunction>, route: RouteLimiter<FastifyRequest>) {
  return function spillwayRateLimitHook(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    protocol.limit(route, request, reply, done)
  }
}

export const spillwayRateLimit = fp(spillwayRateLimitPlugin, { name: '@spillway/rate-limit', fastify: '5.x' })
