/**
 * What the plugin counts, read through `fastify.rateLimit`: decisions by outcome, store trouble, and
 * the store's round-trip latency over a sliding time window.
 */
import { LatencyWindow, type LatencySnapshot, type Clock } from '@spillway/latency-window/core'

export interface RateLimitCounters {
  allowed: number
  limited: number
  /** Store calls that failed or took longer than `storeTimeoutMs`. */
  storeErrors: number
  storeTimeouts: number
  /** Decisions taken without the store (local bucket, fail-open or fail-closed). */
  fallbackDecisions: number
  /** Times the plugin switched from the store to the fallback. */
  degradations: number
  recoveries: number
}

export interface RateLimitSnapshot extends RateLimitCounters {
  /** True while the store is considered down and decisions use the fallback. */
  degraded: boolean
  storeLatency: LatencySnapshot
}

export class RateLimitStats implements RateLimitCounters {
  allowed = 0
  limited = 0
  storeErrors = 0
  storeTimeouts = 0
  fallbackDecisions = 0
  degradations = 0
  recoveries = 0
  degraded = false
  readonly storeLatency: LatencyWindow

  constructor(now?: Clock) {
    this.storeLatency = new LatencyWindow(now === undefined ? {} : { now })
  }

  snapshot(): RateLimitSnapshot {
    return {
      allowed: this.allowed,
      limited: this.limited,
      storeErrors: this.storeErrors,
      storeTimeouts: this.storeTimeouts,
      fallbackDecisions: this.fallbackDecisions,
      degradations: this.degradations,
      recoveries: this.recoveries,
      degraded: this.degraded,
      storeLatency: this.storeLatency.snapshot()
    }
  }
}
