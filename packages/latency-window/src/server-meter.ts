import { monotonicNow, type Clock } from './clock.js'
import { EventLoopSignals, type EventLoopSignalsOptions } from './event-loop-signals.js'
import { InFlight } from './in-flight.js'
import { optionMessage, SpillwayOptionsError, type OptionsErrorFactory } from './option-checks.js'
import { DEFAULT_SLICES, DEFAULT_WINDOW_MS, LatencyWindow, type LatencyWindowOptions } from './latency-window.js'

export interface ServerMeterOptions {
  /** Clock for request timing and the latency window. Default `performance.now`. */
  now?: Clock
  latency?: Omit<LatencyWindowOptions, 'now'>
  eventLoop?: EventLoopSignalsOptions
}

/**
 * One server's measurements, shared by every Spillway plugin registered on it so that each request
 * is timed and counted once, however many plugins read the figures.
 */
export class ServerMeter {
  readonly now: Clock
  readonly latency: LatencyWindow
  readonly inFlight = new InFlight()
  readonly eventLoop: EventLoopSignals
  #measuredBy: string | undefined
  /** Windows of other shapes that readers asked for, fed by the same measurements. */
  readonly #extraWindows: LatencyWindow[] = []
  #pressure = 0
  #pressureSource: string | undefined
  readonly #eventLoopOptions: EventLoopSignalsOptions | undefined

  constructor(options: ServerMeterOptions = {}) {
    this.now = options.now ?? monotonicNow
    this.#eventLoopOptions = options.eventLoop
    this.latency = new LatencyWindow({ ...options.latency, now: this.now })
    this.eventLoop = new EventLoopSignals(options.eventLoop)
  }

  /**
   * A latency window of this shape fed by this meter's measurements: the shared `latency` window
   * when it has the shape, else one more window that every measurement is also recorded into
   * (about 25 ns a request). So a plugin that needs a shorter window than the first plugin created
   * gets it, and each request is still timed once.
   */
  latencyWindow(shape?: Omit<LatencyWindowOptions, 'now'>): LatencyWindow {
    if (shape === undefined) return this.latency
    const windowMs = shape.windowMs ?? DEFAULT_WINDOW_MS
    const slices = shape.slices ?? DEFAULT_SLICES
    if (this.latency.windowMs === windowMs && this.latency.slices === slices) return this.latency
    for (const window of this.#extraWindows) {
      if (window.windowMs === windowMs && window.slices === slices) return window
    }
    const window = new LatencyWindow({ windowMs, slices, now: this.now })
    this.#extraWindows.push(window)
    return window
  }

  /** Records one measured request latency into every window; `at` is the end, on `now`. */
  recordLatency(ms: number, at: number): void {
    this.latency.record(ms, at)
    for (let i = 0; i < this.#extraWindows.length; i++) this.#extraWindows[i]!.record(ms, at)
  }

  /**
   * True for the first caller only: that caller installs the per-request hooks feeding `latency`
   * and `inFlight`; the others read what it measures.
   */
  claimMeasurement(owner: string): boolean {
    if (this.#measuredBy !== undefined) return false
    this.#measuredBy = owner
    return true
  }

  /**
   * Overload pressure published by a controller that computes one (the load shedder): 0 when the
   * server has headroom, 1 when it is shedding everything it may shed. Others (the degradation
   * controller) read it instead of deriving their own from the same signals.
   */
  publishPressure(source: string, pressure: number): void {
    this.#pressureSource = source
    this.#pressure = Number.isFinite(pressure) ? Math.min(Math.max(pressure, 0), 1) : 0
  }

  /** The last published pressure, 0 if none was. */
  get pressure(): number {
    return this.#pressure
  }

  /** Who publishes pressure, undefined when nobody does. */
  get pressureSource(): string | undefined {
    return this.#pressureSource
  }

  /**
   * The options of a later caller that this meter, created earlier, cannot honour: another clock
   * or other event-loop sampler settings (a window of another shape it can: `latencyWindow`).
   */
  conflictsWith(options: ServerMeterOptions | undefined): string | undefined {
    if (options === undefined) return undefined
    if (options.now !== undefined && options.now !== this.now) {
      return optionMessage('now', options.now, 'the clock the server\'s shared meter was created with (give every Spillway plugin on a server the same `now`)')
    }
    const given = options.eventLoop
    const own = this.#eventLoopOptions
    if (given !== undefined && given !== own &&
      (given.intervalMs !== own?.intervalMs || given.resolutionMs !== own?.resolutionMs || given.sources !== own?.sources)) {
      return optionMessage('eventLoop', given, 'the event-loop settings the server\'s shared meter was created with (set them on the first Spillway plugin only)')
    }
    return undefined
  }

  /** Who measures, if anyone does yet. */
  get measuredBy(): string | undefined {
    return this.#measuredBy
  }
}

// On globalThis under a registered symbol, so that two copies of this package in one process
// (a plugin bundling its own) still share one meter per server.
const REGISTRY = Symbol.for('spillway.server-meters')
type Registry = WeakMap<object, ServerMeter>

function registry(): Registry {
  const scope = globalThis as { [REGISTRY]?: Registry }
  return (scope[REGISTRY] ??= new WeakMap())
}

/**
 * The meter for `server` (any object standing for one server, such as its `http.Server`), created
 * with `options` on first use. Later callers get the same meter; options it cannot honour (another
 * clock, other event-loop settings) throw, through `fail`, rather than being ignored.
 */
export function sharedMeter(
  server: object, options?: ServerMeterOptions, fail: OptionsErrorFactory = (message) => new SpillwayOptionsError(message)
): ServerMeter {
  const meters = registry()
  let meter = meters.get(server)
  if (meter === undefined) {
    meter = new ServerMeter(options)
    meters.set(server, meter)
    return meter
  }
  const conflict = meter.conflictsWith(options)
  if (conflict !== undefined) throw fail(conflict)
  return meter
}
