import type { LimitAlgorithm } from './limit-algorithm.js'

/**
 * Requests in flight against an adaptive limit, with a share of the limit per priority rank, in
 * the spirit of Netflix concurrency-limits' `AbstractPartitionedLimiter`: by default `low` may only
 * fill 80% of the limit, `normal` all of it, `high` 125% and `critical` 200% (the hard backstop). When a
 * slow dependency fills the limit, the less important work meets its ceiling first and the more
 * important keeps a reserve.
 *
 * `tryAcquire` returns a boolean and a release is a counter decrement: no permit object is
 * allocated per request. RTTs are summed between updates and fed to the algorithm once per
 * control interval (as concurrency-limits' `WindowedLimit` does), which keeps the hot path to a
 * few arithmetic operations and makes the algorithm's input less noisy.
 *
 * A slot can outlive the work it was for: a response that turned into a stream (server-sent
 * events) holds nothing of the server's any more. `reclaim`, when given, frees such slots: it is
 * called when a request meets its ceiling, at most once per request admitted since the last call,
 * so that a burst of streams opening at once is admitted in full, and a limit filled with slow
 * requests is not swept again for every refusal.
 */
export class ConcurrencyLimiter {
  readonly algorithm: LimitAlgorithm
  /** Share of the limit each rank may fill, indexed by rank (critical, high, normal, low). */
  readonly shares: readonly number[]
  readonly #ceilings: Float64Array
  #inFlight = 0
  #peak = 0
  #rttSumMs = 0
  #rttCount = 0
  #dropped = false
  #limit: number
  readonly #reclaim: (() => void) | undefined
  #acquiredSinceReclaim = false

  constructor(algorithm: LimitAlgorithm, shares: readonly number[], reclaim?: () => void) {
    this.algorithm = algorithm
    this.shares = shares
    this.#reclaim = reclaim
    this.#ceilings = new Float64Array(shares.length)
    this.#limit = algorithm.limit
    this.#setCeilings()
  }

  get limit(): number {
    return this.#limit
  }

  get inFlight(): number {
    return this.#inFlight
  }

  /** How many requests of this rank may be in flight at once right now. */
  ceiling(rank: number): number {
    return this.#ceilings[rank] ?? 0
  }

  /** True (and counted) when a request of `rank` fits under its ceiling. */
  tryAcquire(rank: number): boolean {
    const ceiling = this.#ceilings[rank] ?? 0
    if (this.#inFlight >= ceiling && !this.#reclaimed(ceiling)) return false
    this.acquire()
    return true
  }

  /** Counts a request in flight regardless of the limit (shadow mode, bypassed work we still time). */
  acquire(): void {
    this.#acquiredSinceReclaim = true
    if (++this.#inFlight > this.#peak) this.#peak = this.#inFlight
  }

  #reclaimed(ceiling: number): boolean {
    if (this.#reclaim === undefined || !this.#acquiredSinceReclaim) return false
    this.#acquiredSinceReclaim = false
    this.#reclaim()
    return this.#inFlight < ceiling
  }

  /**
   * @param rttMs how long the request was in flight; negative: no sample (a slot let go early)
   * @param dropped whether it failed (5xx) or its client gave up — a loss signal for AIMD
   */
  release(rttMs: number, dropped: boolean): void {
    if (this.#inFlight > 0) this.#inFlight--
    if (rttMs >= 0) {
      this.#rttSumMs += rttMs
      this.#rttCount++
    }
    if (dropped) this.#dropped = true
  }

  /**
   * Feeds the interval's mean RTT, peak in-flight and drop flag to the algorithm and returns the
   * new limit. An interval in which nothing finished leaves the limit alone: no sample, no news.
   * @returns the peak in-flight of the interval (read it before the next interval starts)
   */
  update(startTime: number): number {
    const peak = this.#peak
    this.#peak = this.#inFlight
    if (this.#rttCount > 0) {
      this.#limit = this.algorithm.onSample(startTime, this.#rttSumMs / this.#rttCount, peak, this.#dropped)
      this.#setCeilings()
    }
    this.#rttSumMs = 0
    this.#rttCount = 0
    this.#dropped = false
    return peak
  }

  #setCeilings(): void {
    for (let rank = 0; rank < this.shares.length; rank++) {
      this.#ceilings[rank] = Math.max(1, Math.floor(this.#limit * (this.shares[rank] ?? 1)))
    }
  }
}
