import type { OverloadDetector } from './overload-detector.js'

/**
 * IO-bound overload shows in concurrency: the loop idles while requests wait on a pool. The limit
 * algorithm (Gradient2/AIMD) learns how many requests the dependency can take; when the limiter had
 * to refuse work in the interval, the threshold tightens too, so that the cheap, smooth,
 * cohort-wise threshold, not the blunt limiter, does the bulk of the shedding. Severity: the
 * interval's peak in flight over the limit.
 */
export class LimitDetector implements OverloadDetector {
  overloaded = false
  severity = 0
  /** Most requests in flight at once in the last interval. */
  peakInFlight = 0
  /** The limit at the last step. */
  limit = 1
  #refusals = 0

  /** The hot path: the limiter refused a request. */
  refused(): void {
    this.#refusals++
  }

  sample(peakInFlight: number, limit: number): void {
    this.peakInFlight = peakInFlight
    this.limit = Math.max(1, limit)
    this.overloaded = this.#refusals > 0
    this.severity = this.overloaded ? peakInFlight / this.limit : 0
    this.#refusals = 0
  }

  /** The peak in flight over the limit, whether or not anything was refused. */
  get load(): number {
    return this.peakInFlight / this.limit
  }
}
