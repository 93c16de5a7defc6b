/**
 * The rate limiter's decisions, without a framework and without building a store: route settings
 * read and prepared once, `cost` tokens taken per request (synchronously from the memory store, one
 * round trip otherwise), what a store that failed without an answer means, the draft's header
 * values, and a refusal's context and body. `request-protocol.ts` runs it for each request;
 * `create-store.ts` builds the store it is given.
 */
import { problemDetails, type ProblemDetails } from '@spillway/latency-window/core'
import { routeSettings, type LimitedContext, type NormalizedOptions, type RouteSettings } from './options.js'
import { PolicySlots } from './policy-options.js'
import { MemoryStore } from './memory-store.js'
import { consumeFlexible, rewardFlexible } from './flexible-store.js'
import { LEGACY_HEADER_NAMES, RATE_LIMIT_HEADER_NAMES, policyHeader, rateLimitHeader, sfString, tightestPolicy } from './headers.js'
import { publish, rateLimitChannel } from './events.js'
import type { RateLimitStats } from './stats.js'
import { newDecision, type BucketStore, type Decision, type Policy } from './policy.js'

/** The draft's problem type for a request over quota (draft-ietf-httpapi-ratelimit-headers-11 §5.1). */
export const QUOTA_EXCEEDED_TYPE = 'https://iana.org/assignments/http-problem-types#quota-exceeded'

/** One route's (or one middleware's) policies, with what its headers repeat on every response. */
export interface RouteLimiter<Req> extends RouteSettings<Req> {
  readonly id: string
  readonly names: readonly string[]
  readonly policyHeader: string
  /** Reused by the synchronous memory path: one decision is finished before the next starts. */
  readonly scratch: Decision
}

/** How to write a header on a framework's response object, without a closure per request. */
export interface HeaderWriter<Target> {
  setHeader(target: Target, name: string, value: string | number): void
  getHeader(target: Target, name: string): unknown
}

const exposedNames = (legacy: boolean): string =>
  [...RATE_LIMIT_HEADER_NAMES, ...(legacy ? LEGACY_HEADER_NAMES : [])].join(', ')

export class RateLimiter<Req, Res> {
  readonly options: NormalizedOptions<Req, Res>
  readonly stats: RateLimitStats
  readonly store: BucketStore
  /** True with the memory store: `take` never returns a Promise. */
  readonly synchronous: boolean
  readonly #exposed: string
  /** The limiter's own policies took the first `buckets.length` slots; routes take the next. */
  readonly #slots: PolicySlots

  constructor(options: NormalizedOptions<Req, Res>, store: BucketStore, stats: RateLimitStats) {
    this.options = options
    this.store = store
    this.stats = stats
    this.synchronous = store instanceof MemoryStore
    this.#exposed = exposedNames(options.legacyHeaders)
    this.#slots = new PolicySlots(options.buckets.length)
  }

  /** A route's settings: the limiter's with `config` (what `config.rateLimit` holds) laid over them. */
  routeSettings(config: unknown, routeId: string): RouteSettings<Req> {
    return routeSettings(this.options, config, routeId, this.#slots)
  }

  /** Prepares a route's settings once, at registration. */
  prepare(id: string, settings: RouteSettings<Req>): RouteLimiter<Req> {
    return Object.freeze({
      ...settings,
      id,
      names: Object.freeze(settings.policies.map((policy) => sfString(policy.name))),
      policyHeader: policyHeader(settings.policies),
      scratch: newDecision(settings.policies.length)
    })
  }

  /**
   * Takes `cost` tokens for `key` (already a store key) from every policy of the route. A Promise
   * rejects when a store failed without an answer of its own: see `storeFailed`.
   */
  take(route: RouteLimiter<Req>, key: string, cost: number): Decision | Promise<Decision> {
    if (route.flexible.length === 0) {
      return this.store.take(route.buckets, key, cost, this.synchronous ? route.scratch : newDecision(route.policies.length))
    }
    return this.#takeWithFlexible(route, key, cost)
  }

  /** Rejects with a flexible policy's store error (rate-limiter-flexible's insuranceLimiter, when set, answers before that). */
  async #takeWithFlexible(route: RouteLimiter<Req>, key: string, cost: number): Promise<Decision> {
    const decision = newDecision(route.policies.length)
    const offset = route.buckets.length
    const passed = await consumeFlexible(route.flexible, key, cost, decision, offset)
    if (!passed || route.buckets.length === 0) return decision
    const flexibleResults = decision.results.slice(offset)
    const taken = await this.store.take(route.buckets, key, cost, decision)
    // The bucket store rewrote the whole decision; put the flexible policies' results back.
    for (let i = 0; i < flexibleResults.length; i++) taken.results[offset + i] = flexibleResults[i] as Decision['results'][number]
    if (!taken.allowed) await rewardFlexible(route.flexible, key, cost)
    return taken
  }

  /**
   * The decision for a request whose store failed without an answer (a rate-limiter-flexible store,
   * or any store not behind `StoreFallback`), taken as the fallback takes one for a failed Redis:
   * `'open'` admits, `'closed'` refuses until the next probe would be due; counted as a store
   * error and a fallback decision. `'local'` has no local bucket to ask here (the fallback's stand
   * in for Redis, and a store that rejects is not behind it): it admits, as `'open'`.
   */
  storeFailed(route: RouteLimiter<Req>): Decision {
    this.stats.storeErrors++
    this.stats.fallbackDecisions++
    const decision = newDecision(route.policies.length)
    decision.allowed = this.options.onStoreError !== 'closed'
    decision.retryAfterMs = decision.allowed ? 0 : this.options.probeIntervalMs
    decision.source = decision.allowed ? 'open' : 'closed'
    return decision
  }

  /**
   * Writes the RateLimit headers (only for a decision a store or the local bucket took: a
   * fail-open or fail-closed answer has nothing to report) and the CORS exposure. Names are in
   * lower case, as Fastify writes its own: field names are case-insensitive, and a lower-case name
   * spares Fastify and Node a conversion and a string-table lookup per header on every response.
   */
  writeHeaders<Target>(target: Target, writer: HeaderWriter<Target>, route: RouteLimiter<Req>, decision: Decision): void {
    const options = this.options
    const informative = decision.source === 'store' || decision.source === 'local'
    if (options.headers && informative) {
      writer.setHeader(target, 'ratelimit-policy', route.policyHeader)
      writer.setHeader(target, 'ratelimit', rateLimitHeader(route.names, decision))
      if (options.legacyHeaders) {
        const i = tightestPolicy(decision)
        const result = decision.results[i] as Decision['results'][number]
        writer.setHeader(target, 'x-ratelimit-limit', Math.floor((route.policies[i] as Policy).capacity))
        writer.setHeader(target, 'x-ratelimit-remaining', Math.max(0, result.remaining))
        writer.setHeader(target, 'x-ratelimit-reset', result.resetMs > 0 ? Math.ceil(result.resetMs / 1000) : 0)
      }
    }
    if (options.exposeHeaders) {
      const existing = writer.getHeader(target, 'access-control-expose-headers')
      writer.setHeader(target, 'access-control-expose-headers', existing === undefined ? this.#exposed : `${String(existing)}, ${this.#exposed}`)
    }
  }

  /** Counts an admitted request. */
  admitted(): void {
    this.stats.allowed++
  }

  /** Counts a refused request and answers what `onLimited` and `errorResponseBuilder` are given. */
  refused(route: RouteLimiter<Req>, key: string, decision: Decision, retryAfterSeconds: number): LimitedContext {
    this.stats.limited++
    const violatedPolicies: string[] = []
    for (let i = 0; i < route.policies.length; i++) {
      if (decision.results[i]?.allowed === false) violatedPolicies.push((route.policies[i] as Policy).name)
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
