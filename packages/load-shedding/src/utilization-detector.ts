import type { OverloadDetector } from './overload-detector.js'

/**
 * CPU-bound overload by utilization: the event loop's utilization, smoothed over two intervals (one
 * busy interval is a burst, two in a row are load), at or above `maxUtilization`. A loop that is
 * busy all the time has no headroom even when its delay looks short, which is what happens once
 * clients start timing out: the loop then spends itself on closing and reopening connections in
 * many short iterations, and the delay alone would miss the collapse. Severity 1.
 */
export class UtilizationDetector implements OverloadDetector {
  readonly maxUtilization: number
  overloaded = false
  severity = 0
  /** The smoothed utilization, 0–1. */
  smoothed = 0

  constructor(maxUtilization: number) {
    this.maxUtilization = maxUtilization
  }

  sample(utilization: number): void {
    this.smoothed = 0.5 * this.smoothed + 0.5 * utilization
    this.overloaded = this.smoothed >= this.maxUtilization
    this.severity = this.overloaded ? 1 : 0
  }
}
