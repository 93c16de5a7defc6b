/** The user API of the Fastify plugin. The framework-free parts are `@spillway/rate-limit/core`. */
export {
  spillwayRateLimit, spillwayRateLimit as default,
  type RateLimitDecorator, type RateLimitOptions, type RouteRateLimitOptions, type KeyGenerator, type CostFunction, type AllowListFunction
} from './plugin.js'
export type { LimitedContext } from './options.js'
export { RateLimitOptionsError, RateLimitCostError } from './errors.js'
export { QUOTA_EXCEEDED_TYPE } from './rate-limiter.js'
export { RATE_LIMIT_CHANNEL, type RateLimitEvent } from './events.js'
export type { RateLimitSnapshot, RateLimitCounters } from './stats.js'
export type { RedisClient } from './redis-store.js'
export type { StoreErrorMode } from './store-fallback.js'
export type { PolicyOptions, BucketPolicyOptions, FlexiblePolicyOptions, FlexibleLimiter, Decision, DecisionSource } from './policy.js'
export type { TakeResult } from './token-bucket.js'
