import type { OverloadDetector } from './overload-detector.js'
import type { RunQueueReading } from './run-queue.js'

const EMPTY: RunQueueReading = { expired: 0, dispatched: 0, peakLength: 0, length: 0 }

/**
 * CPU-bound overload with the run queue: the backlog is in the process, and the queue's own
 * expiries are the signal. A busy loop whose waiting requests are served in time is at capacity,
 * not past it. While requests were still waiting at the end of an interval, or waited too long,
 * the loop was saturated all interval, so what it served is what it can do: that rate, smoothed,
 * is the measured capacity. On an expiry the threshold is to admit that capacity plus `headroom`
 * (the `ceiling`), and the queue refuses the excess, so that it never runs dry (an idle CPU is
 * goodput lost) while the threshold does the bulk of the shedding. Severity 1.
 */
export class RunQueueDetector implements OverloadDetector {
  readonly headroom: number
  overloaded = false
  severity = 0
  /** On an overload, the admitted rate the threshold must come down to, per second. */
  ceiling: number | undefined
  /** The last interval's queue figures. */
  reading: RunQueueReading = EMPTY
  #capacityPerSecond = 0

  constructor(headroom: number) {
    this.headroom = headroom
  }

  sample(reading: RunQueueReading, servedPerSecond: number): void {
    this.reading = reading
    if (reading.length > 0 || reading.expired > 0) {
      this.#capacityPerSecond = this.#capacityPerSecond === 0
        ? servedPerSecond
        : 0.7 * this.#capacityPerSecond + 0.3 * servedPerSecond
    }
    this.overloaded = reading.expired > 0
    this.severity = this.overloaded ? 1 : 0
    this.ceiling = this.overloaded ? Math.max(servedPerSecond, this.#capacityPerSecond) * (1 + this.headroom) : undefined
  }
}
