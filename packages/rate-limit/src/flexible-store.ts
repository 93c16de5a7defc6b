/**
 * Any rate-limiter-flexible limiter (its Postgres, Mongo, Memcached, DynamoDB… stores, with its
 * insurance limiter and in-memory block if configured) as a fixed-window policy beside the token
 * buckets. Flexible policies are consumed first; if one refuses, the points already consumed from
 * the others are given back (`reward`) and no bucket is touched; if a bucket then refuses, every
 * flexible policy gets its points back. Not one atomic step like the Redis script, but a refused
 * request ends up taking from none.
 */
import type { Decision, FlexiblePolicy } from './policy.js'

/** rate-limiter-flexible rejects with its result object when a limit is hit, and with an Error when its store fails. */
function isRefusal(value: unknown): value is { remainingPoints: number, msBeforeNext: number } {
  return typeof value === 'object' && value !== null && !(value instanceof Error) && 'msBeforeNext' in value
}

/**
 * Consumes `cost` from every flexible policy, writing results from `decision.results[offset]` on.
 * Resolves true when all had the points; rejects with the store's Error when one failed (after
 * giving back what was taken).
 */
export async function consumeFlexible(
  policies: readonly FlexiblePolicy[], key: string, cost: number, decision: Decision, offset: number
): Promise<boolean> {
  let consumed = 0
  try {
    for (; consumed < policies.length; consumed++) {
      const policy = policies[consumed] as FlexiblePolicy
      const result = decision.results[offset + consumed]
      try {
        const res = await policy.limiter.consume(key, cost)
        if (result !== undefined) {
          result.allowed = true
          result.remaining = Math.max(0, res.remainingPoints)
          result.retryAfterMs = 0
          result.resetMs = Math.max(0, res.msBeforeNext)
        }
      } catch (error) {
        if (!isRefusal(error)) throw error
        if (result !== undefined) {
          result.allowed = false
          result.remaining = Math.max(0, error.remainingPoints)
          result.retryAfterMs = Math.max(1, error.msBeforeNext)
          result.resetMs = Math.max(0, error.msBeforeNext)
        }
        decision.allowed = false
        if (result !== undefined && result.retryAfterMs > decision.retryAfterMs) decision.retryAfterMs = result.retryAfterMs
        await rewardFlexible(policies, key, cost, consumed)
        return false
      }
    }
  } catch (error) {
    await rewardFlexible(policies, key, cost, consumed)
    throw error
  }
  return true
}

/** Gives `cost` back to the first `count` flexible policies (errors ignored: the window expires anyway). */
export async function rewardFlexible(
  policies: readonly FlexiblePolicy[], key: string, cost: number, count = policies.length
): Promise<void> {
  for (let i = 0; i < count; i++) {
    try {
      await (policies[i] as FlexiblePolicy).limiter.reward(key, cost)
    } catch {}
  }
}
