/**
 * The token bucket, as pure arithmetic over an injected clock: a bucket holds up to `capacity`
 * tokens, refills continuously at `refillPerSecond`, and a request takes `cost` tokens or none.
 * Framework-free and store-free: the memory store keeps these in a Map, the Redis script runs the
 * same formula inside Redis.
 */

/**
 * Floating-point refill (`elapsedMs × rate / 1000`) can land a hair below a whole token that is
 * mathematically due (0.1 × 10 s = 0.9999999999999998). A tolerance far below any meaningful
 * fraction of a token keeps the arithmetic exact in practice without an integer representation.
 */
export const TOKEN_EPSILON = 1e-9

/** The outcome of a `take`, written into a caller-owned object so the hot path allocates nothing. */
export interface TakeResult {
  allowed: boolean
  /** Whole tokens left after this request (floor). */
  remaining: number
  /** Until `cost` tokens are available again, ms (0 when allowed). */
  retryAfterMs: number
  /** Until the bucket is full again, ms. */
  resetMs: number
}

export function emptyTakeResult(): TakeResult {
  return { allowed: true, remaining: 0, retryAfterMs: 0, resetMs: 0 }
}

export class TokenBucket {
  /** Tokens at `updatedAtMs`, fractional. */
  tokens: number
  updatedAtMs: number

  constructor(
    readonly capacity: number,
    readonly refillPerSecond: number,
    nowMs: number
  ) {
    this.tokens = capacity
    this.updatedAtMs = nowMs
  }

  /** Adds the tokens earned since the last update (never above capacity; a clock going back earns none). */
  refill(nowMs: number): number {
    const elapsedMs = nowMs - this.updatedAtMs
    if (elapsedMs > 0) {
      const tokens = this.tokens + (elapsedMs * this.refillPerSecond) / 1000
      this.tokens = tokens > this.capacity ? this.capacity : tokens
      this.updatedAtMs = nowMs
    }
    return this.tokens
  }

  /** True when, after refilling, `cost` tokens are there. Takes nothing. */
  canTake(cost: number, nowMs: number): boolean {
    return this.refill(nowMs) + TOKEN_EPSILON >= cost
  }

  /** Takes `cost` tokens when they are there, else nothing; fills `out` and returns it. */
  take(cost: number, nowMs: number, out: TakeResult = emptyTakeResult()): TakeResult {
    const allowed = this.canTake(cost, nowMs)
    if (allowed) this.commit(cost)
    return this.describe(cost, allowed, out)
  }

  /** Subtracts `cost` after `canTake` said yes (the second half of an all-or-none take). */
  commit(cost: number): void {
    const tokens = this.tokens - cost
    this.tokens = tokens > 0 ? tokens : 0
  }

  /** Fills `out` from the current state (after `refill`/`commit`). */
  describe(cost: number, allowed: boolean, out: TakeResult): TakeResult {
    const tokens = this.tokens
    out.allowed = allowed
    out.remaining = Math.floor(tokens + TOKEN_EPSILON)
    out.retryAfterMs = allowed ? 0 : msToEarn(cost - tokens, this.refillPerSecond)
    out.resetMs = msToEarn(this.capacity - tokens, this.refillPerSecond)
    return out
  }

  /** True when the bucket would be full at `nowMs`: forgetting it then loses nothing. */
  isFullAt(nowMs: number): boolean {
    return this.tokens + ((nowMs - this.updatedAtMs) * this.refillPerSecond) / 1000 + TOKEN_EPSILON >= this.capacity
  }
}

/** Time to earn `tokens` at `refillPerSecond`, ms, rounded up to a whole ms (0 when none are missing). */
export function msToEarn(tokens: number, refillPerSecond: number): number {
  if (tokens <= TOKEN_EPSILON) return 0
  return Math.ceil((tokens * 1000) / refillPerSecond - TOKEN_EPSILON)
}
