import type { Clock } from '@spillway/latency-window/core'
import { LOAD_SIGNALS, type LevelSettings, type LoadSignal } from './level-options.js'

/** The signals a level is computed from, as read at one evaluation. */
export interface LoadReading {
  /** Request latency at the configured percentile, ms. */
  latencyMs: number
  /** Samples behind `latencyMs`; fewer than `minSamples` and latency is not judged. */
  samples: number
  /**
   * The requests in flight read as latency at the same percentile, ms: the age of the oldest
   * ones, when enough of the recent requests are still in flight (`ServerMeter.inFlightLatency`).
   * Judged as latency: the latency signal is the higher of the two.
   */
  inFlightAgeMs?: number
  /** Samples behind `inFlightAgeMs`; fewer than `minSamples` and it is not judged. */
  inFlightSamples?: number
  /** Event-loop delay, ms: the p99 of a sampler interval, the lower of the last two (one stall is not a trend). */
  eventLoopDelayMs: number
  /** Event-loop utilization over a sampler interval, the lower of the last two, 0 to 1. */
  utilization: number
  /** Pressure published by the load shedder (0 to 1), undefined when nobody publishes one. */
  pressure: number | undefined
}

/** A level change, with the reason and the figures that caused it. */
export interface LevelChange {
  from: number
  to: number
  /** The signal that raised the level, or `recovered` when it came down after the dwell time. */
  reason: LoadSignal | 'recovered'
  /** For a rise: the signal's value and the threshold it reached. */
  value?: number
  threshold?: number
  reading: LoadReading
  at: number
}

/**
 * Turns load into a degradation level: 0 is healthy, `levels` is the most degraded.
 *
 * Each signal has a ladder of thresholds, one per level. The level goes up at once to the highest
 * level any signal reaches, and comes down one level at a time, only after every signal has stayed
 * below the current level's lower threshold (`threshold × recoverRatio`) for `dwellMs`; each step
 * down needs a fresh dwell. Between the lower and the upper threshold the level holds and the dwell
 * restarts, so an input oscillating around one threshold moves the level once, not back and forth.
 * Latency from too few samples says nothing: it neither raises the level nor lets it come down.
 * Latency is the window's percentile or, when they read higher, the requests in flight's: a
 * dependency that hangs shows in their age before any slow request has completed.
 *
 * Pure: no timers, an injected clock; `evaluate()` is called by whoever owns the schedule.
 */
export class LevelController {
  readonly levels: number
  readonly thresholds: Readonly<Record<LoadSignal, readonly number[] | false>>
  readonly recoverRatio: number
  readonly dwellMs: number
  readonly minSamples: number
  readonly #now: Clock
  #level = 0
  #belowSince: number | undefined
  #held = false
  #inFlightPeakMs = 0
  #inFlightPeakAt = Number.NEGATIVE_INFINITY

  /** `settings` as `normalizeLevelOptions` returns them: taken as they are, checked there once. */
  constructor(settings: LevelSettings) {
    this.levels = settings.levels
    this.thresholds = settings.thresholds
    this.recoverRatio = settings.recoverRatio
    this.dwellMs = settings.dwellMs
    this.minSamples = settings.minSamples
    this.#now = settings.now
  }

  /** The level computed from load (overrides are applied elsewhere). */
  get level(): number {
    return this.#level
  }

  /** True when the last evaluation held the level because latency had too few samples. */
  get held(): boolean {
    return this.#held
  }

  /** Feeds one reading; returns the change it caused, if any. */
  evaluate(reading: LoadReading): LevelChange | undefined {
    const at = this.#now()
    const latency = this.#latency(reading, at)
    const latencyJudged = this.thresholds.latencyMs === false || latency !== undefined
    this.#held = !latencyJudged
    let up = 0
    let upSignal: LoadSignal | undefined
    let upValue = 0
    let stay = 0
    for (const signal of LOAD_SIGNALS) {
      const ladder = this.thresholds[signal]
      if (ladder === false) continue
      const value = signal === 'latencyMs' ? latency : reading[signal]
      if (value === undefined || !Number.isFinite(value)) continue
      const reached = countReached(ladder, value, 1)
      if (reached > up) {
        up = reached
        upSignal = signal
        upValue = value
      }
      stay = Math.max(stay, countReached(ladder, value, this.recoverRatio))
    }
    const from = this.#level
    if (up > from && upSignal !== undefined) {
      this.#level = up
      this.#belowSince = undefined
      const threshold = (this.thresholds[upSignal] as readonly number[])[up - 1] as number
      return { from, to: up, reason: upSignal, value: upValue, threshold, reading, at }
    }
    if (from === 0 || stay >= from || !latencyJudged) {
      // In the band between the thresholds, or unable to judge: hold, and the dwell starts over.
      this.#belowSince = undefined
      return undefined
    }
    if (this.#belowSince === undefined) this.#belowSince = at
    if (at - this.#belowSince < this.dwellMs) return undefined
    this.#level = from - 1
    this.#belowSince = this.#level > stay ? at : undefined
    return { from, to: this.#level, reason: 'recovered', reading, at }
  }

  /**
   * The latency judged: the window's, or the in-flight requests' when they read higher, each only
   * from `minSamples` samples up; undefined when neither has enough. The in-flight figure is the
   * highest read within the last `dwellMs`: the age of the requests in flight at one evaluation
   * depends on when it falls between their starts, and the window behind it catches up only over
   * seconds, so an instant of young requests must not count as the dwell below a threshold that
   * the in-flight ages raised the level past.
   */
  #latency(reading: LoadReading, at: number): number | undefined {
    const windowed = reading.samples >= this.minSamples ? reading.latencyMs : undefined
    let inFlight = (reading.inFlightSamples ?? 0) >= this.minSamples ? reading.inFlightAgeMs : undefined
    if (inFlight === undefined || !Number.isFinite(inFlight)) inFlight = undefined
    else if (inFlight >= this.#inFlightPeakMs || at - this.#inFlightPeakAt >= this.dwellMs) {
      this.#inFlightPeakMs = inFlight
      this.#inFlightPeakAt = at
    } else {
      inFlight = this.#inFlightPeakMs
    }
    if (inFlight === undefined) return windowed
    return windowed === undefined || inFlight > windowed ? inFlight : windowed
  }

  /** Back to level 0 with no dwell in progress. */
  reset(): void {
    this.#level = 0
    this.#belowSince = undefined
    this.#held = false
    this.#inFlightPeakMs = 0
    this.#inFlightPeakAt = Number.NEGATIVE_INFINITY
  }
}

/** How many thresholds of the ladder `value` reaches, each scaled by `ratio`. */
function countReached(ladder: readonly number[], value: number, ratio: number): number {
  let reached = 0
  for (const threshold of ladder) {
    if (value < threshold * ratio) break
    reached++
  }
  return reached
}
