/**
 * The Fastify plugin: reads each route's settings once in `onRoute`, adds one hook to the routes it
 * limits, and decides there — synchronously with the memory store (no Promise, no allocation
 * beyond the header strings), in one Redis round trip otherwise.
 */
import fp from 'fastify-plugin'
import { Redis } from 'ioredis'
import type {
  FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, HookHandlerDoneFunction, RouteOptions
} from 'fastify'
import { PROBLEM_CONTENT_TYPE, problemDetails, retryAfterSeconds } from '@spillway/latency-window'
import { excludeFromLatency } from '@spillway/latency-window/fastify'
import { normalizeOptions, routeSettings, type LimitedContext, type NormalizedOptions, type RateLimitOptions, type RouteRateLimitOptions, type RouteSettings } from './options.js'
import { storeKey } from './keys.js'
import { MemoryStore } from './memory-store.js'
import { RedisStore } from './redis-store.js'
import { StoreFallback } from './store-fallback.js'
import { consumeFlexible, rewardFlexible } from './flexible-store.js'
import { LEGACY_HEADER_NAMES, RATE_LIMIT_HEADER_NAMES, policyHeader, rateLimitHeader, sfString, tightestPolicy } from './headers.js'
import { publish, rateLimitChannel } from './events.js'
import { RateLimitStats, type RateLimitSnapshot } from './stats.js'
import { newDecision, type BucketStore, type Decision } from './policy.js'
import createError from '@fastify/error'

/** A cost function returned something that is not a finite number ≥ 0. */
export const RateLimitCostError = createError('SPILLWAY_RATE_LIMIT_COST', 'cost function returned %s, expected a finite number >= 0', 500)

/** The draft's problem type for a request over quota (draft-ietf-httpapi-ratelimit-headers-11 §5.1). */
export const QUOTA_EXCEEDED_TYPE = 'https://iana.org/assignments/http-problem-types#quota-exceeded'

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

interface RouteLimiter extends RouteSettings {
  id: string
  names: string[]
  policyHeader: string
  /** Reused by the synchronous memory path: one decision is finished before the next starts. */
  scratch: Decision
}

const exposedNames = (legacy: boolean): string =>
  [...RATE_LIMIT_HEADER_NAMES, ...(legacy ? LEGACY_HEADER_NAMES : [])].join(', ')

const spillwayRateLimitPlugin: FastifyPluginAsync<RateLimitOptions> = async function spillwayRateLimit(fastify, input) {
  const options = normalizeOptions(input)
  const stats = new RateLimitStats(options.now)
  const store = await buildStore(options, stats, fastify)
  const synchronous = store instanceof MemoryStore
  const exposed = exposedNames(options.legacyHeaders)

  fastify.decorate('rateLimit', {
    stats: () => stats.snapshot(),
    store: synchronous ? 'memory' : 'redis',
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
    const route: RouteLimiter = {
      ...settings,
      id,
      names: settings.policies.map((policy) => sfString(policy.name)),
      policyHeader: policyHeader(settings.policies),
      scratch: newDecision(settings.policies.length)
    }
    addHook(routeOptions, options.hook, limitHook(route))
  })

  fastify.addHook('onClose', async () => {
    await store.close()
  })

  function limitHook(route: RouteLimiter) {
    return function spillwayRateLimitHook(request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
      const raw = route.key(request)
      const rawKey = typeof raw === 'string' ? raw : String(raw)
      if (route.allowList !== undefined && route.allowList(request, rawKey)) return done()
      const key = storeKey(rawKey, options.maxKeyLength)
      const cost = typeof route.cost === 'number' ? route.cost : route.cost(request)
      if (!(typeof cost === 'number' && cost >= 0 && Number.isFinite(cost))) return done(new RateLimitCostError(String(cost)))
      if (route.flexible.length === 0) {
        const decision = store.take(route.buckets, key, cost, synchronous ? route.scratch : newDecision(route.policies.length))
        if (!(decision instanceof Promise)) return finish(route, request, reply, done, key, decision)
        decision.then((d) => finishAsync(route, request, reply, done, key, d), () => done())
        return
      }
      decideWithFlexible(route, key, cost).then((d) => finishAsync(route, request, reply, done, key, d), () => done())
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

  async function decideWithFlexible(route: RouteLimiter, key: string, cost: number): Promise<Decision> {
    const decision = newDecision(route.policies.length)
    const offset = route.buckets.length
    let passed: boolean
    try {
      passed = await consumeFlexible(route.flexible, key, cost, decision, offset)
    } catch {
      // Its store failed (rate-limiter-flexible's own insuranceLimiter, when set, answers before this).
      stats.storeErrors++
      stats.fallbackDecisions++
      decision.allowed = options.onStoreError !== 'closed'
      decision.retryAfterMs = decision.allowed ? 0 : options.probeIntervalMs
      decision.source = decision.allowed ? 'open' : 'closed'
      return decision
    }
    if (!passed || route.buckets.length === 0) return decision
    const flexibleResults = decision.results.slice(offset)
    const taken = await store.take(route.buckets, key, cost, decision)
    // The bucket store rewrote the whole decision; put the flexible policies' results back.
    for (let i = 0; i < flexibleResults.length; i++) taken.results[offset + i] = flexibleResults[i] as Decision['results'][number]
    if (!taken.allowed) await rewardFlexible(route.flexible, key, cost)
    return taken
  }

  function finish(
    route: RouteLimiter, request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction, key: string, decision: Decision
  ): void {
    const informative = decision.source === 'store' || decision.source === 'local'
    if (options.headers && informative) {
      reply.header('RateLimit-Policy', route.policyHeader)
      reply.header('RateLimit', rateLimitHeader(route.names, decision))
      if (options.legacyHeaders) {
        const i = tightestPolicy(decision)
        const result = decision.results[i] as Decision['results'][number]
        reply.header('X-RateLimit-Limit', Math.floor((route.policies[i] as RouteLimiter['policies'][number]).capacity))
        reply.header('X-RateLimit-Remaining', Math.max(0, result.remaining))
        reply.header('X-RateLimit-Reset', result.resetMs > 0 ? Math.ceil(result.resetMs / 1000) : 0)
      }
    }
    if (options.exposeHeaders) {
      const existing = reply.getHeader('Access-Control-Expose-Headers')
      reply.header('Access-Control-Expose-Headers', existing === undefined ? exposed : `${String(existing)}, ${exposed}`)
    }
    if (decision.allowed) {
      stats.allowed++
      return done()
    }
    stats.limited++
    refuse(route, request, reply, key, decision)
  }

  function refuse(route: RouteLimiter, request: FastifyRequest, reply: FastifyReply, key: string, decision: Decision): void {
    const seconds = retryAfterSeconds(decision.retryAfterMs)
    const violatedPolicies: string[] = []
    for (let i = 0; i < route.policies.length; i++) {
      if (decision.results[i]?.allowed === false) violatedPolicies.push((route.policies[i] as RouteLimiter['policies'][number]).name)
    }
    const context: LimitedContext = {
      key, route: route.id, retryAfterMs: decision.retryAfterMs, retryAfterSeconds: seconds, violatedPolicies, decision
    }
    // A refusal in microseconds would drag the shared latency figures down.
    excludeFromLatency(request)
    if (rateLimitChannel.hasSubscribers) {
      publish({ type: 'limited', key, route: route.id, violatedPolicies, retryAfterMs: decision.retryAfterMs })
    }
    if (options.onLimited !== undefined) options.onLimited(request, reply, context)
    reply.code(429).header('Retry-After', seconds)
    if (options.errorResponseBuilder !== undefined) {
      reply.send(options.errorResponseBuilder(request, context))
      return
    }
    reply.header('content-type', PROBLEM_CONTENT_TYPE).send(problemDetails(
      429, 'Too Many Requests', `Rate limit exceeded; retry in ${seconds} s.`,
      { type: QUOTA_EXCEEDED_TYPE, 'violated-policies': violatedPolicies }
    ))
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

/** How long registration waits for a Redis it connects to itself; past that it starts on the fallback. */
const CONNECT_WAIT_MS = 2000

async function buildStore(options: NormalizedOptions, stats: RateLimitStats, fastify: FastifyInstance): Promise<BucketStore> {
  const memoryOptions = { maxKeys: options.maxKeys, ...(options.now === undefined ? {} : { now: options.now }) }
  if (options.redis === undefined) return new MemoryStore(memoryOptions)
  const ownsClient = typeof options.redis === 'string'
  const client = typeof options.redis === 'string'
    // Without the offline queue a command fails at once while Redis is down, instead of waiting for storeTimeoutMs.
    ? new Redis(options.redis, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
    : options.redis
  if (ownsClient) {
    // ioredis reports every failed reconnect; the fallback logs the outage once instead.
    client.on('error', () => {})
    // Without the offline queue, commands sent before the connection is up would fail: wait for it.
    const ready = await waitReady(client as Redis, CONNECT_WAIT_MS)
    if (!ready) fastify.log.warn({ waitedMs: CONNECT_WAIT_MS }, 'rate-limit Redis not ready at startup: the fallback decides until it is')
  }
  return new StoreFallback({
    store: new RedisStore({ client, prefix: options.prefix, ownsClient }),
    onStoreError: options.onStoreError,
    storeTimeoutMs: options.storeTimeoutMs,
    probeIntervalMs: options.probeIntervalMs,
    instances: options.instances,
    maxKeys: options.maxKeys,
    stats,
    log: fastify.log,
    ...(options.now === undefined ? {} : { now: options.now })
  })
}

function waitReady(client: Redis, timeoutMs: number): Promise<boolean> {
  if (client.status === 'ready') return Promise.resolve(true)
  return new Promise((resolve) => {
    const done = (ready: boolean) => {
      clearTimeout(timer)
      client.off('ready', onReady)
      resolve(ready)
    }
    const onReady = () => done(true)
    const timer = setTimeout(() => done(false), timeoutMs)
    client.on('ready', onReady)
  })
}

export const spillwayRateLimit = fp(spillwayRateLimitPlugin, { name: '@spillway/rate-limit', fastify: '5.x' })
