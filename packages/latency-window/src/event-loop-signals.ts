import { monitorEventLoopDelay, performance, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks'
import { checkFunction, checkKnownKeys, checkNumber, checkOptionsObject } from './option-checks.js'

/** The figures of the last completed interval. */
export interface EventLoopReading {
  /** 99th percentile of the event-loop delay in the interval, ms. */
  delayP99Ms: number
  /** Largest event-loop delay in the interval, ms. */
  delayMaxMs: number
  /** Share of the interval the loop spent running code, 0 to 1. */
  utilization: number
  /** Clock reading (ms) when the interval ended; 0 before the first interval. */
  sampledAt: number
}

/** What the signals read: Node's own sources by default, fakes in tests. */
export interface EventLoopSources {
  /** Delay histogram in nanoseconds, as `monitorEventLoopDelay` returns. */
  delay: Pick<IntervalHistogram, 'percentile' | 'max' | 'count' | 'reset' | 'enable' | 'disable'>
  eventLoopUtilization: (
    current?: EventLoopUtilization,
    previous?: EventLoopUtilization
  ) => EventLoopUtilization
  now: () => number
}

export interface EventLoopSignalsOptions {
  /** How often a reading is taken, ms. Default 500. */
  intervalMs?: number
  /** Sampling resolution of the delay histogram, ms. Default 10. */
  resolutionMs?: number
  /** Replaces Node's sources, for tests. */
  sources?: EventLoopSources
}

// `satisfies`: an option added to the interface and not here (or the other way round) fails the build.
export const EVENT_LOOP_OPTIONS = Object.keys({ intervalMs: true, resolutionMs: true, sources: true } satisfies Record<keyof EventLoopSignalsOptions, true>)

const NS_PER_MS = 1e6
const IDLE: EventLoopReading = Object.freeze({ delayP99Ms: 0, delayMaxMs: 0, utilization: 0, sampledAt: 0 })

/**
 * Event-loop pressure per interval: the tail delay (p99 and max, reset every interval) and the
 * utilization over the interval (a delta of two readings).
 *
 * Not the mean delay, which a single 200 ms stall among a hundred idle ticks barely moves, and not
 * the cumulative utilization since start, which after an hour of idling takes minutes to notice
 * that the loop is now saturated.
 *
 * Several users may share one instance: `retain()` starts the timer for the first, `release()`
 * stops it after the last.
 */
export class EventLoopSignals {
  readonly intervalMs: number
  readonly #sources: EventLoopSources
  #timer: NodeJS.Timeout | undefined
  #users = 0
  #lastElu: EventLoopUtilization | undefined
  #reading: EventLoopReading = IDLE
  #previous: EventLoopReading = IDLE
  readonly #afterSample: (() => void) | undefined

  /** `afterSample`: called after each timed sample (the shared meter sweeps its in-flight list there). */
  constructor(input?: EventLoopSignalsOptions, afterSample?: () => void) {
    this.#afterSample = afterSample
    const options = checkOptionsObject<EventLoopSignalsOptions>('options', input)
    checkKnownKeys('', options, EVENT_LOOP_OPTIONS)
    this.intervalMs = checkNumber('intervalMs', options.intervalMs ?? 500, { min: 10, max: 60_000 })
    const resolutionMs = checkNumber('resolutionMs', options.resolutionMs ?? 10, { min: 1, max: 1000, integer: true })
    if (options.sources !== undefined) {
      const { sources } = options
      checkFunction('sources.eventLoopUtilization', sources.eventLoopUtilization)
      checkFunction('sources.now', sources.now)
      this.#sources = sources
    } else {
      this.#sources = {
        delay: monitorEventLoopDelay({ resolution: resolutionMs }),
        eventLoopUtilization: performance.eventLoopUtilization.bind(performance),
        now: () => performance.now()
      }
    }
  }

  /** The last completed interval. All zero until the first interval has passed. */
  get current(): Readonly<EventLoopReading> {
    return this.#reading
  }

  /**
   * The interval before `current`: with it, a reader can tell a stall (one interval) from a trend
   * (two in a row). All zero until two intervals have passed.
   */
  get previous(): Readonly<EventLoopReading> {
    return this.#previous
  }

  get running(): boolean {
    return this.#timer !== undefined
  }

  /** Starts sampling (once per instance, however many users retain it). */
  retain(): void {
    if (this.#users++ > 0) return
    this.#sources.delay.reset()
    this.#sources.delay.enable()
    this.#lastElu = this.#sources.eventLoopUtilization()
    this.#timer = setInterval(() => {
      this.sample()
      this.#afterSample?.()
    }, this.intervalMs)
    // The sampler must never be what keeps a process alive.
    this.#timer.unref()
  }

  /** Stops sampling when the last user has released it. Extra releases are ignored. */
  release(): void {
    if (this.#users === 0) return
    if (--this.#users > 0) return
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#sources.delay.disable()
  }

  /** Closes the interval now: takes a reading and starts the next interval. The timer calls it. */
  sample(): Readonly<EventLoopReading> {
    const { delay, eventLoopUtilization, now } = this.#sources
    const elu = eventLoopUtilization()
    const utilization = this.#lastElu === undefined ? 0 : eventLoopUtilization(elu, this.#lastElu).utilization
    this.#lastElu = elu
    const hasDelay = delay.count > 0
    this.#previous = this.#reading
    this.#reading = {
      delayP99Ms: hasDelay ? delay.percentile(99) / NS_PER_MS : 0,
      delayMaxMs: hasDelay ? delay.max / NS_PER_MS : 0,
      utilization: Number.isFinite(utilization) ? Math.min(Math.max(utilization, 0), 1) : 0,
      sampledAt: now()
    }
    delay.reset()
    return this.#reading
  }
}
