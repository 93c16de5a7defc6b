import { checkNumber, checkOptionsObject, monotonicNow, optionMessage, type Clock, type OptionsErrorFactory } from '@spillway/latency-window/core'
import { failOption } from './errors.js'

/** The signals a level is computed from, as read at one evaluation. */
export interface LoadReading {
  /** Request latency at the configured percentile, ms. */
  latencyMs: number
  /** Samples behind `latencyMs`; fewer than `minSamples` and latency is not judged. */
  samples: number
  /** Event-loop delay (p99 of the last interval), ms. */
  eventLoopDelayMs: number
  /** Event-loop utilization over the last interval, 0 to 1. */
  utilization: number
  /** Pressure published by the load shedder (0 to 1), undefined when nobody publishes one. */
  pressure: number | undefined
}

export const LOAD_SIGNALS = ['latencyMs', 'eventLoopDelayMs', 'utilization', 'pressure'] as const
export type LoadSignal = (typeof LOAD_SIGNALS)[number]

/** Per signal, the value at which each level starts (ascending, one per level); `false` ignores it. */
export type LevelThresholds = { [S in LoadSignal]?: readonly number[] | false }

export interface LevelControllerOptions {
  /** Number of degradation levels above 0. Default 3. */
  levels?: number
  /** Default (for 3 levels): latency 250/500/1000 ms, event-loop delay 100/200/500 ms, pressure 0.25/0.5/0.75, utilization ignored. */
  thresholds?: LevelThresholds
  /** A level is left only below `threshold × recoverRatio` (the lower threshold). Default 0.8. */
  recoverRatio?: number
  /** How long every signal must stay below the lower threshold before the level drops by one, ms. Default 10000. */
  dwellMs?: number
  /** Latency from fewer samples than this is not judged, and the level holds. Default 20. */
  minSamples?: number
  now?: Clock
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

export const DEFAULT_LEVELS = 3
const DEFAULT_THRESHOLDS: Readonly<Record<LoadSignal, readonly number[] | false>> = {
  latencyMs: [250, 500, 1000],
  eventLoopDelayMs: [100, 200, 500],
  utilization: false,
  pressure: [0.25, 0.5, 0.75]
}
const SIGNAL_MAX: Readonly<Record<LoadSignal, number>> = {
  latencyMs: 100_000, eventLoopDelayMs: 100_000, utilization: 1, pressure: 1
}

function checkLadder(option: string, value: unknown, levels: number, max: number, fail: OptionsErrorFactory): readonly number[] {
  const expected = `false or an ascending array of ${levels} numbers in (0, ${max}]`
  if (!Array.isArray(value) || value.length !== levels) throw fail(optionMessage(option, value, expected))
  let previous = 0
  for (const step of value as unknown[]) {
    if (typeof step !== 'number' || !Number.isFinite(step) || step <= previous || step > max) {
      throw fail(optionMessage(option, value, expected))
    }
    previous = step
  }
  return Object.freeze([...(value as number[])])
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

  constructor(input?: LevelControllerOptions, fail: OptionsErrorFactory = failOption) {
    const options = checkOptionsObject<LevelControllerOptions>('options', input, fail)
    this.levels = checkNumber('levels', options.levels ?? DEFAULT_LEVELS, { min: 1, max: 16, integer: true, fail })
    const given = checkOptionsObject<LevelThresholds>('thresholds', options.thresholds, fail)
    const thresholds = {} as Record<LoadSignal, readonly number[] | false>
    for (const key of Object.keys(given)) {
      if (!(LOAD_SIGNALS as readonly string[]).includes(key)) {
        throw fail(optionMessage('thresholds', key, `keyed by ${LOAD_SIGNALS.join(', ')} only (unknown key)`))
      }
    }
    for (const signal of LOAD_SIGNALS) {
      // The defaults describe three levels; with another count, a signal the user did not configure is ignored.
      const fallback = this.levels === DEFAULT_LEVELS ? DEFAULT_THRESHOLDS[signal] : false
      const value = given[signal] ?? fallback
      thresholds[signal] = value === false ? false : checkLadder(`thresholds.${signal}`, value, this.levels, SIGNAL_MAX[signal], fail)
    }
    if (LOAD_SIGNALS.every((signal) => thresholds[signal] === false)) {
      throw fail(optionMessage('thresholds', options.thresholds, `at least one signal with ${this.levels} thresholds`))
    }
    this.thresholds = Object.freeze(thresholds)
    this.recoverRatio = checkNumber('recoverRatio', options.recoverRatio ?? 0.8, { min: 0.01, max: 1, fail })
    this.dwellMs = checkNumber('dwellMs', options.dwellMs ?? 10_000, { min: 0, max: 3_600_000, fail })
    this.minSamples = checkNumber('minSamples', options.minSamples ?? 20, { min: 0, max: 1_000_000, integer: true, fail })
    this.#now = options.now ?? monotonicNow
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
    const latencyJudged = this.thresholds.latencyMs === false || reading.samples >= this.minSamples
    this.#held = !latencyJudged
    let up = 0
    let upSignal: LoadSignal | undefined
    let stay = 0
    for (const signal of LOAD_SIGNALS) {
      const ladder = this.thresholds[signal]
      if (ladder === false) continue
      if (signal === 'latencyMs' && !latencyJudged) continue
      const value = reading[signal]
      if (value === undefined || !Number.isFinite(value)) continue
      const reached = countReached(ladder, value, 1)
      if (reached > up) {
        up = reached
        upSignal = signal
      }
      stay = Math.max(stay, countReached(ladder, value, this.recoverRatio))
    }
    const from = this.#level
    if (up > from && upSignal !== undefined) {
      this.#level = up
      this.#belowSince = undefined
      const value = reading[upSignal] as number
      const threshold = (this.thresholds[upSignal] as readonly number[])[up - 1] as number
      return { from, to: up, reason: upSignal, value, threshold, reading, at }
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

  /** Back to level 0 with no dwell in progress. */
  reset(): void {
    this.#level = 0
    this.#belowSince = undefined
    this.#held = false
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
