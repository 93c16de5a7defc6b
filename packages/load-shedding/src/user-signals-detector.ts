import type { OverloadDetector } from './overload-detector.js'

/** A user signal: a load ratio where 1 means "at the limit" (heap used / budget, pool wait / target…). */
export type LoadSignal = () => number

/** The user's signals: any at or above 1 is overload, and the largest is the severity. */
export class UserSignalsDetector implements OverloadDetector {
  readonly signals: Readonly<Record<string, LoadSignal>>
  overloaded = false
  severity = 0
  /** Each signal's last value. */
  readonly values: Record<string, number> = {}

  constructor(signals: Readonly<Record<string, LoadSignal>>) {
    this.signals = signals
  }

  sample(): void {
    this.overloaded = false
    this.severity = 0
    for (const name in this.signals) {
      let value = 0
      try {
        value = Number(this.signals[name]!())
      } catch {
        // A throwing user signal must not stop the controller; it reads as "no pressure".
      }
      if (!Number.isFinite(value)) value = 0
      this.values[name] = value
      if (value >= 1) {
        this.overloaded = true
        this.severity = Math.max(this.severity, value)
      }
    }
  }
}
