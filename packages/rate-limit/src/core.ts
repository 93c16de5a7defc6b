/**
 * The framework-free parts, as the subpath `@spillway/rate-limit/core`: what another framework's
 * mount (the Express middleware of `@spillway/express`) builds on, without the Fastify plugin and
 * its `fastify` declaration merging. The option types here are generic in the request and the
 * response; `@spillway/rate-limit` states them with Fastify's.
 */
export { RateLimitProtocol, type RateLimitMount } from './request-protocol.js'
export { RateLimiter, QUOTA_EXCEEDED_TYPE, type RouteLimiter, type HeaderWriter } from './rate-limiter.js'
export { createRateLimiter, createStore } from './create-store.js'
export {
  normalizeOptions, routeSettings,
  type NormalizedOptions, type RouteSettings, type RateLimitOptions, type RouteRateLimitOptions,
  type LimitedContext, type CostFunction, type AllowListFunction
} from './options.js'
export { normalizePolicies, PolicySlots, type LimitOptions, type PolicyLists } from './policy-options.js'
export { RateLimitOptionsError, RateLimitCostError, failOption } from './errors.js'
export { RateLimitStats, type RateLimitSnapshot, type RateLimitCounters } from './stats.js'
export { TokenBucket, msToEarn, emptyTakeResult, TOKEN_EPSILON, type TakeResult } from './token-bucket.js'
export { MemoryStore, type MemoryStoreOptions } from './memory-store.js'
export { RedisStore, type RedisStoreOptions, type RedisClient } from './redis-store.js'
export { TOKEN_BUCKET_SCRIPT, TOKEN_BUCKETS_SCRIPT } from './redis-script.js'
export { StoreFallback, STORE_ERROR_MODES, type StoreErrorMode, type StoreFallbackOptions, type TransitionLogger } from './store-fallback.js'
export { consumeFlexible, rewardFlexible } from './flexible-store.js'
export { storeKey, defaultKey, type KeyGenerator } from './keys.js'
export {
  policyHeader, rateLimitHeader, sfString, tightestPolicy, RATE_LIMIT_HEADER_NAMES, LEGACY_HEADER_NAMES
} from './headers.js'
export { RATE_LIMIT_CHANNEL, type RateLimitEvent } from './events.js'
export {
  newDecision,
  type Decision, type DecisionSource, type BucketStore, type Policy, type BucketPolicy, type FlexiblePolicy,
  type PolicyOptions, type BucketPolicyOptions, type FlexiblePolicyOptions, type FlexibleLimiter
} from './policy.js'
