import { performance } from 'node:perf_hooks'

/** A monotonic clock in milliseconds. Inject one in tests to make time deterministic. */
export type Clock = () => number

/**
 * `performance.now()` rather than `Date.now()`: wall-clock time jumps with NTP and manual changes,
 * which would rotate a window too early or never.
 */
export const monotonicNow: Clock = () => performance.now()
