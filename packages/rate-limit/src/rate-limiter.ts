/**
 * The rate limiter without a framework: route policies prepared once, a decision per request
 * (synchronous with the memory store, one Redis round trip otherwise), the draft's header values
 * and the refusal's context and body. The Fastify plugin and the Express middleware (in
 * `@spillway/express`) only read the key and cost from their request and write what this answers.
 */
import { Redis } from 'ioredis'
import { problemDetails, type ProblemDetails } from '@spillway/latency-window/core'
import type { LimitedContext, NormalizedOptions, RouteSettings } from './options.js'
import { MemoryStore } from './memory-store.js'
import { RedisStore } from './redis-store.js'
import { StoreFallback, type TransitionLogger } from './store-fallback.js'
import { consumeFlexible, rewardFlexible } from './flexible-store.js'
import { LEGACY_HEADER_NAMES, RATE_LIMIT_HEADER_NAMES, policyHeader, rateLimitHeader, sfString, tightestPolicy } from './headers.js'
import { publish, rateLimitChannel } from './events.js'
import { RateLimitStats } from './stats.js'
import { newDecision, type BucketStore, type Decision } from './policy.js'

/** The draft's problem type for a request over quota (draft-ietf-httpapi-ratelimit-headers-11 §5.1). */
export const QUOTA_EXCEEDED_TYPE = 'https://iana.org/assignments/http-problem-types#quota-exceeded'

/** One route's (or one middleware's) policies, with what its headers repeat on every response. */
export interface RouteLimiter extends RouteSettings {
  id: string
  names: string[]
  policyHeader: string
  /** Reused by the synchronous memory path: one decision is finished before the next starts. */
  scratch: Decision
}

/** How to write a header on a framework's response object, without a closure per request. */
export interface HeaderWriter<Target> {
  set(target: Target, name: string, value: string | number): void
  get(target: Target, name: string): unknown
}

const exposedNames = (legacy: boolean): string =>
  [...RATE_LIMIT_HEADER_NAMES, ...(legacy ? LEGACY_HEADER_NAMES : [])].join(', ')

export class RateLimiter {
  readonly options: NormalizedOptions
  readonly stats: RateLimitStats
  readonly store: BucketStore
  /** True with the memory store: `take` never returns a Promise. */
  readonly synchronous: boolean
  readonly #exposed: string

  constructor(options: NormalizedOptions, store: BucketStore, stats: RateLimitStats) {
    this.options = options
    this.store = store
    this.stats = stats
    this.synchronous = store instanceof MemoryStore
    this.#exposed = exposedNames(options.legacyHeaders)
  }

  /** Prepares a route's settings (from `routeSettings`) once, at registration. */
  prepare(id: string, settings: RouteSettings): RouteLimiter {
    return {
      ...settings,
      id,
      names: settings.policies.map((policy) => sfString(policy.name)),
      policyHeader: policyHeader(settings.policies),
      scratch: newDecision(settings.policies.length)
    }
  }

  /** Takes `cost` tokens for `key` (already a store key) from every policy of the route. */
  take(route: RouteLimiter, key: string, cost: number): Decision | Promise<Decision> {
    if (route.flexible.length === 0) {
      return this.store.take(route.buckets, key, cost, this.synchronous ? route.scratch : newDecision(route.policies.length))
    }
    return this.#takeWithFlexible(route, key, cost)
  }

  async #takeWithFlexible(route: RouteLimiter, key: string, cost: number): Promise<Decision> {
    const decision = newDecision(route.policies.length)
    const offset = route.buckets.length
    let passed: boolean
    try {
      passed = await consumeFlexible(route.flexible, key, cost, decision, offset)
    } catch {
      // Its store failed (rate-limiter-flexible's own insuranceLimiter, when set, answers before this).
      this.stats.storeErrors++
      this.stats.fallbackDecisions++
      decision.allowed = this.options.onStoreError !== 'closed'
      decision.retryAfterMs = decision.allowed ? 0 : this.options.probeIntervalMs
      decision.source = decision.allowed ? 'open' : 'closed'
      return decision
    }
    if (!passed || route.buckets.length === 0) return decision
    const flexibleResults = decision.results.slice(offset)
    const taken = await this.store.take(route.buckets, key, cost, decision)
    // The bucket store rewrote the whole decision; put the flexible policies' results back.
    for (let i = 0; i < flexibleResults.length; i++) taken.results[offset + i] = flexibleResults[i] as Decision['results'][number]
    if (!taken.allowed) await rewardFlexible(route.flexible, key, cost)
    return taken
  }

  /**
   * Writes the RateLimit headers (only for a decision a store or the local bucket took: a
   * fail-open or fail-closed answer has nothing to report) and the CORS exposure. Names are in
   * lower case, as Fastify writes its own: field names are case-insensitive, and a lower-case name
   * spares Fastify and Node a conversion and a string-table lookup per header on every response.
   */
  writeHeaders<Target>(target: Target, writer: HeaderWriter<Target>, route: RouteLimiter, decision: Decision): void {
    const options = this.options
    const informative = decision.source === 'store' || decision.source === 'local'
    if (options.headers && informative) {
      writer.set(target, 'ratelimit-policy', route.policyHeader)
      writer.set(target, 'ratelimit', rateLimitHeader(route.names, decision))
      if (options.legacyHeaders) {
        const i = tightestPolicy(decision)
        const result = decision.results[i] as Decision['results'][number]
        writer.set(target, 'x-ratelimit-limit', Math.floor((route.policies[i] as RouteLimiter['policies'][number]).capacity))
        writer.set(target, 'x-ratelimit-remaining', Math.max(0, result.remaining))
        writer.set(target, 'x-ratelimit-reset', result.resetMs > 0 ? Math.ceil(result.resetMs / 1000) : 0)
      }
    }
    if (options.exposeHeaders) {
      const existing = writer.get(target, 'access-control-expose-headers')
      writer.set(target, 'access-control-expose-headers', existing === undefined ? this.#exposed : `${String(existing)}, ${this.#exposed}`)
    }
  }

  /** Counts an admitted request. */
  admitted(): void {
    this.stats.allowed++
  }

  /** Counts a refused request and answers what `onLimited` and `errorResponseBuilder` are given. */
  refused(route: RouteLimiter, key: string, decision: Decision, retryAfterSeconds: number): LimitedContext {
    this.stats.limited++
    const violatedPolicies: string[] = []
    for (let i = 0; i < route.policies.length; i++) {
      if (decision.results[i]?.allowed === false) violatedPolicies.push((route.policies[i] as RouteLimiter['policies'][number]).name)
    }
    if (rateLimitChannel.hasSubscribers) {
      publish({ type: 'limited', key, route: route.id, violatedPolicies, retryAfterMs: decision.retryAfterMs })
    }
    return { key, route: route.id, retryAfterMs: decision.retryAfterMs, retryAfterSeconds, violatedPolicies, decision }
  }

  /** The 429 body when no `errorResponseBuilder` is given. */
  problem(context: LimitedContext): ProblemDetails {
    return problemDetails(
      429, 'Too Many Requests', `Rate limit exceeded; retry in ${context.retryAfterSeconds} s.`,
      { type: QUOTA_EXCEEDED_TYPE, 'violated-policies': context.violatedPolicies }
    )
  }

  close(): Promise<void> {
    return this.store.close()
  }
}

/** How long a limiter waits for a Redis it connects to itself; past that it starts on the fallback. */
const CONNECT_WAIT_MS = 2000

/**
 * The store the options ask for: memory, or Redis behind the fallback. `ready` settles when a Redis
 * the limiter connects to itself (a URL) is ready, or after `CONNECT_WAIT_MS` with a warning;
 * decisions taken before then go to the fallback.
 */
export function createStore(
  options: NormalizedOptions, stats: RateLimitStats, log: TransitionLogger
): { store: BucketStore, ready: Promise<void> } {
  const memoryOptions = { maxKeys: options.maxKeys, ...(options.now === undefined ? {} : { now: options.now }) }
  if (options.redis === undefined) return { store: new MemoryStore(memoryOptions), ready: Promise.resolve() }
  const ownsClient = typeof options.redis === 'string'
  const client = typeof options.redis === 'string'
    // Without the offline queue a command fails at once while Redis is down, instead of waiting for storeTimeoutMs.
    ? new Redis(options.redis, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
    : options.redis
  let ready = Promise.resolve()
  if (ownsClient) {
    // ioredis reports every failed reconnect; the fallback logs the outage once instead.
    client.on('error', () => {})
    // Without the offline queue, commands sent before the connection is up would fail: wait for it.
    ready = waitReady(client as Redis, CONNECT_WAIT_MS).then((isReady) => {
      if (!isReady) log.warn({ waitedMs: CONNECT_WAIT_MS }, 'rate-limit Redis not ready at startup: the fallback decides until it is')
    })
  }
  const store = new StoreFallback({
    store: new RedisStore({ client, prefix: options.prefix, ownsClient }),
    onStoreError: options.onStoreError,
    storeTimeoutMs: options.storeTimeoutMs,
    probeIntervalMs: options.probeIntervalMs,
    instances: options.instances,
    maxKeys: options.maxKeys,
    stats,
    log,
    ...(options.now === undefined ? {} : { now: options.now })
  })
  return { store, ready }
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
