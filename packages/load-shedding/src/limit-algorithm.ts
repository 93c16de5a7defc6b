/**
 * A concurrency-limit algorithm in the shape of Netflix concurrency-limits' `Limit`: it is fed one
 * aggregated sample per control interval and answers the new limit. Framework-free and clock-free
 * (the caller passes the times), so a test drives it with plain numbers.
 */
export interface LimitAlgorithm {
  /** Current limit on requests in flight (not rounded: the limiter floors it). */
  readonly limit: number
  /**
   * One sample.
   * @param startTime when the sampled interval began, ms on the caller's clock
   * @param rttMs representative round-trip time of the requests that ended in the interval, ms
   * @param inflight the most requests that were in flight at once during the interval
   * @param didDrop whether a request in the interval failed or was abandoned by its client
   * @returns the new limit
   */
  onSample(startTime: number, rttMs: number, inflight: number, didDrop: boolean): number
}
