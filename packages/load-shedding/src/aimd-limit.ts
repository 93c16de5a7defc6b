import { checkKnownKeys, checkNumber, checkOptionsObject } from '@spillway/latency-window/core'
import { failOption } from './errors.js'
import type { LimitAlgorithm } from './limit-algorithm.js'

export interface AimdLimitOptions {
  /** Limit before the first sample. Default 20. */
  initialLimit?: number
  /** Default 4. */
  minLimit?: number
  /** Default 1000. */
  maxLimit?: number
  /** Multiplier applied on a drop or a slow sample, in (0, 1). Default 0.9. */
  backoffRatio?: number
  /** A sample slower than this counts as a drop, ms. Default 1000. */
  timeoutMs?: number
}

// `satisfies`: an option added to the interface and not here (or the other way round) fails the build.
const OPTIONS = Object.keys({
  initialLimit: true, minLimit: true, maxLimit: true, backoffRatio: true, timeoutMs: true
} satisfies Record<keyof AimdLimitOptions, true>)

/**
 * Additive increase, multiplicative decrease, as Netflix concurrency-limits' `AIMDLimit`:
 * on a drop (or an RTT above `timeoutMs`) `limit ← max(minLimit, limit × backoffRatio)`;
 * otherwise, when the limit is actually used (`inflight × 2 ≥ limit`), `limit ← limit + 1`.
 * The "used" condition stops the limit growing without bound while the service is idle.
 */
export class AimdLimit implements LimitAlgorithm {
  readonly minLimit: number
  readonly maxLimit: number
  readonly backoffRatio: number
  readonly timeoutMs: number
  #limit: number

  constructor(input?: AimdLimitOptions) {
    const options = checkOptionsObject<AimdLimitOptions>('aimd', input, failOption)
    checkKnownKeys('aimd', options, OPTIONS, failOption)
    this.minLimit = checkNumber('aimd.minLimit', options.minLimit ?? 4, { min: 1, fail: failOption })
    this.maxLimit = checkNumber('aimd.maxLimit', options.maxLimit ?? 1000, { min: this.minLimit, fail: failOption })
    this.#limit = checkNumber('aimd.initialLimit', options.initialLimit ?? Math.min(Math.max(20, this.minLimit), this.maxLimit),
      { min: this.minLimit, max: this.maxLimit, fail: failOption })
    this.backoffRatio = checkNumber('aimd.backoffRatio', options.backoffRatio ?? 0.9, { min: 0.01, max: 0.99, fail: failOption })
    this.timeoutMs = checkNumber('aimd.timeoutMs', options.timeoutMs ?? 1000, { min: 0.001, fail: failOption })
  }

  get limit(): number {
    return this.#limit
  }

  onSample(_startTime: number, rttMs: number, inflight: number, didDrop: boolean): number {
    let limit = this.#limit
    if (didDrop || rttMs > this.timeoutMs) limit = limit * this.backoffRatio
    else if (inflight * 2 >= limit) limit = limit + 1
    this.#limit = Math.min(this.maxLimit, Math.max(this.minLimit, limit))
    return this.#limit
  }
}
