/**
 * A named limit that applies to a request: a token bucket (`capacity`, `refillPerSecond`) or a
 * rate-limiter-flexible limiter used as a fixed window. Several may apply at once (a burst and a
 * quota); a request passes only if every one of them has the tokens.
 */
import type { TakeResult } from './token-bucket.js'

export interface BucketPolicyOptions {
  name: string
  /** Most tokens the bucket holds: the burst. */
  capacity: number
  /** Tokens earned per second, may be fractional (0.5 = one every 2 s). */
  refillPerSecond: number
}

/** The subset of a rate-limiter-flexible limiter this package calls (any of its stores fits). */
export interface FlexibleLimiter {
  readonly points: number
  /** Window, seconds (0 = never resets). */
  readonly duration: number
  consume(key: string | number, points?: number): Promise<{ remainingPoints: number, msBeforeNext: number }>
  reward(key: string | number, points?: number): Promise<unknown>
}

export interface FlexiblePolicyOptions {
  name: string
  limiter: FlexibleLimiter
}

export type PolicyOptions = BucketPolicyOptions | FlexiblePolicyOptions

export interface BucketPolicy {
  readonly kind: 'bucket'
  readonly name: string
  readonly capacity: number
  readonly refillPerSecond: number
  /** Unique per plugin instance: where the memory store keeps this policy's buckets. */
  readonly index: number
  /** Part of the Redis key: the name, prefixed with the route for route-specific policies. */
  readonly storeId: string
  /** `w` of RateLimit-Policy: seconds to refill from empty, whole (the draft allows no fraction). */
  readonly windowSeconds: number
}

export interface FlexiblePolicy {
  readonly kind: 'flexible'
  readonly name: string
  readonly capacity: number
  readonly limiter: FlexibleLimiter
  readonly windowSeconds: number
}

export type Policy = BucketPolicy | FlexiblePolicy

/** What a request got from all its policies; `results[i]` belongs to the route's `policies[i]`. */
export interface Decision {
  allowed: boolean
  /** Until the request would pass, ms: the longest wait among the policies that refused. */
  retryAfterMs: number
  /** Where the answer came from: the configured store, the local fallback bucket, or a fail-open/closed rule. */
  source: DecisionSource
  results: TakeResult[]
}

export type DecisionSource = 'store' | 'local' | 'open' | 'closed'

export function newDecision(policyCount: number): Decision {
  const results: TakeResult[] = []
  for (let i = 0; i < policyCount; i++) results.push({ allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 0 })
  return { allowed: true, retryAfterMs: 0, source: 'store', results }
}

/** A store of token buckets. The memory store answers synchronously; remote stores return a Promise. */
export interface BucketStore {
  take(policies: readonly BucketPolicy[], key: string, cost: number, out: Decision): Decision | Promise<Decision>
  close(): Promise<void>
}
