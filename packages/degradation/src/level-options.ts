/**
 * The level controller's options, checked once: `normalizeLevelOptions` turns what the user wrote
 * into the frozen settings `LevelController` takes as they are.
 */
import {
  checkFunction, checkKnownKeys, checkNumber, checkOptionsObject, monotonicNow, optionMessage, type Clock, type OptionsErrorFactory
} from '@spillway/latency-window/core'
import { failOption } from './errors.js'

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

/** The controller's settings, every default applied and every value checked. */
export interface LevelSettings {
  readonly levels: number
  readonly thresholds: Readonly<Record<LoadSignal, readonly number[] | false>>
  readonly recoverRatio: number
  readonly dwellMs: number
  readonly minSamples: number
  readonly now: Clock
}

// `satisfies`: an option added to the interface and not here (or the other way round) fails the build.
const OPTIONS = Object.keys({
  levels: true, thresholds: true, recoverRatio: true, dwellMs: true, minSamples: true, now: true
} satisfies Record<keyof LevelControllerOptions, true>)

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

function checkThresholds(input: unknown, levels: number, fail: OptionsErrorFactory): LevelSettings['thresholds'] {
  const given = checkOptionsObject<LevelThresholds>('thresholds', input, fail)
  checkKnownKeys('thresholds', given, LOAD_SIGNALS, fail)
  const thresholds = {} as Record<LoadSignal, readonly number[] | false>
  for (const signal of LOAD_SIGNALS) {
    // The defaults describe three levels; with another count, a signal the user did not configure is ignored.
    const fallback = levels === DEFAULT_LEVELS ? DEFAULT_THRESHOLDS[signal] : false
    const value = given[signal] ?? fallback
    thresholds[signal] = value === false ? false : checkLadder(`thresholds.${signal}`, value, levels, SIGNAL_MAX[signal], fail)
  }
  if (LOAD_SIGNALS.every((signal) => thresholds[signal] === false)) {
    throw fail(optionMessage('thresholds', input, `at least one signal with ${levels} thresholds`))
  }
  return Object.freeze(thresholds)
}

/** Every controller option checked, with its default: a bad one throws through `fail`, naming it. */
export function normalizeLevelOptions(input?: LevelControllerOptions, fail: OptionsErrorFactory = failOption): LevelSettings {
  const options = checkOptionsObject<LevelControllerOptions>('options', input, fail)
  checkKnownKeys('', options, OPTIONS, fail)
  const levels = checkNumber('levels', options.levels ?? DEFAULT_LEVELS, { min: 1, max: 16, integer: true, fail })
  const thresholds = checkThresholds(options.thresholds, levels, fail)
  const recoverRatio = checkNumber('recoverRatio', options.recoverRatio ?? 0.8, { min: 0.01, max: 1, fail })
  const dwellMs = checkNumber('dwellMs', options.dwellMs ?? 10_000, { min: 0, max: 3_600_000, fail })
  const minSamples = checkNumber('minSamples', options.minSamples ?? 20, { min: 0, max: 1_000_000, integer: true, fail })
  const now = options.now === undefined ? monotonicNow : checkFunction<Clock>('now', options.now, fail)
  return Object.freeze({ levels, thresholds, recoverRatio, dwellMs, minSamples, now })
}
