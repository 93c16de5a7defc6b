import type { EventLoopReading } from '@spillway/latency-window/core'
import type { OverloadDetector } from './overload-detector.js'

/** The event-loop figures of one control interval, with the median delay the overload test reads. */
export interface LoopReading extends EventLoopReading {
  /** Median event-loop delay in the interval, ms. */
  delayP50Ms: number
}

/**
 * CPU-bound overload without the run queue: the *median* event-loop delay of the interval above
 * `targetDelayMs` while the loop was busy at least `minUtilization`. When the loop is saturated,
 * every poll phase works through the whole backlog read from the sockets, so nearly every delay
 * sample is about one backlog long: the median sees a standing queue (CoDel's "minimum sojourn
 * above target", RFC 8289), while one long batch, a GC pause or a moment of CPU stolen by a
 * neighbour moves only the tail. Severity: the delay over its target.
 */
export class EventLoopDelayDetector implements OverloadDetector {
  readonly targetDelayMs: number
  readonly minUtilization: number
  overloaded = false
  severity = 0
  /** The median delay over its target in the last interval. */
  load = 0
  /** The median delay fell by a quarter or more since the previous interval: a backlog draining. */
  falling = false
  #previousDelayP50Ms = 0

  constructor(targetDelayMs: number, minUtilization: number) {
    this.targetDelayMs = targetDelayMs
    this.minUtilization = minUtilization
  }

  sample(reading: LoopReading): void {
    this.load = reading.delayP50Ms / this.targetDelayMs
    this.overloaded = this.load > 1 && reading.utilization >= this.minUtilization
    this.severity = this.overloaded ? this.load : 0
    this.falling = reading.delayP50Ms < 0.75 * this.#previousDelayP50Ms
    this.#previousDelayP50Ms = reading.delayP50Ms
  }
}
