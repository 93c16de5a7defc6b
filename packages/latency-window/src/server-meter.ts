import type { IncomingMessage } from 'node:http'
import { monotonicNow, type Clock } from './clock.js'
import { EVENT_LOOP_OPTIONS, EventLoopSignals, type EventLoopSignalsOptions } from './event-loop-signals.js'
import { InFlight } from './in-flight.js'
import { InFlightRequests, type InFlightLatency } from './in-flight-requests.js'
import { checkKnownKeys, checkOptionsObject, optionMessage, SpillwayOptionsError, type OptionsErrorFactory } from './option-checks.js'
import { DEFAULT_SLICES, DEFAULT_WINDOW_MS, LATENCY_WINDOW_OPTIONS, LatencyWindow, type LatencyWindowOptions } from './latency-window.js'
import type { RequestTiming } from './request-timing.js'

export interface ServerMeterOptions {
  /** Clock for request timing and the latency window. Default `performance.now`. */
  now?: Clock
  latency?: Omit<LatencyWindowOptions, 'now'>
  eventLoop?: EventLoopSignalsOptions
}

// `satisfies`: an option added to the interface and not here (or the other way round) fails the build.
const METER_OPTIONS = Object.keys({ now: true, latency: true, eventLoop: true } satisfies Record<keyof ServerMeterOptions, true>)
// The meter gives its windows its own clock.
const METER_LATENCY_OPTIONS = LATENCY_WINDOW_OPTIONS.filter((name) => name !== 'now')

const coreError: OptionsErrorFactory = (message) => new SpillwayOptionsError(message)

/** Told that a request stopped counting before it ended: its response turned into a stream, or it was marked long-lived. */
export type DetachListener = (request: IncomingMessage) => void

/**
 * One server's measurements, shared by every Spillway plugin registered on it so that each request
 * is timed and counted once, however many plugins read the figures.
 */
export class ServerMeter {
  readonly now: Clock
  readonly latency: LatencyWindow
  readonly inFlight = new InFlight()
  /** The requests `inFlight` counts, oldest first. */
  readonly requests = new InFlightRequests<RequestTiming>()
  readonly eventLoop: EventLoopSignals
  #measuredBy: string | undefined
  /** Windows of other shapes that readers asked for, fed by the same measurements. */
  readonly #extraWindows: LatencyWindow[] = []
  #pressure = 0
  #pressureSource: string | undefined
  readonly #eventLoopOptions: EventLoopSignalsOptions | undefined
  readonly #detachListeners: DetachListener[] = []
  readonly #refusedListeners: DetachListener[] = []
  #recorded = 0

  constructor(options: ServerMeterOptions = {}, fail: OptionsErrorFactory = coreError) {
    ServerMeter.checkOptions(options, fail)
    this.now = options.now ?? monotonicNow
    this.#eventLoopOptions = options.eventLoop
    this.latency = new LatencyWindow({ ...options.latency, now: this.now })
    // Streams are noticed on the sampler's timer, which runs while any Spillway plugin is
    // registered: no timer of our own.
    this.eventLoop = new EventLoopSignals(options.eventLoop, () => { this.sweep() })
  }

  /**
   * Checks the option names, nested ones included, without creating a meter: for a mount that
   * creates its meter at its first request (Express), so that a misspelt option fails when the
   * mount is created.
   */
  static checkOptions(input: unknown, fail: OptionsErrorFactory = coreError): void {
    const options = checkOptionsObject<ServerMeterOptions>('options', input, fail)
    checkKnownKeys('', options, METER_OPTIONS, fail)
    if (options.latency !== undefined) {
      checkKnownKeys('latency', checkOptionsObject('latency', options.latency, fail), METER_LATENCY_OPTIONS, fail)
    }
    if (options.eventLoop !== undefined) {
      checkKnownKeys('eventLoop', checkOptionsObject('eventLoop', options.eventLoop, fail), EVENT_LOOP_OPTIONS, fail)
    }
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
    this.#recorded++
    this.latency.record(ms, at)
    for (let i = 0; i < this.#extraWindows.length; i++) this.#extraWindows[i]!.record(ms, at)
  }

  /** Latencies recorded since the meter was created. */
  get recorded(): number {
    return this.#recorded
  }

  /** Counts a request that starts now: it joins the in-flight list (`request-timing.ts` calls it). */
  track(timing: RequestTiming): void {
    this.requests.push(timing)
    this.inFlight.acquire()
  }

  /** A counted request ended. */
  untrack(timing: RequestTiming): void {
    this.requests.remove(timing)
    this.inFlight.release()
  }

  /**
   * A counted request stops counting before it ends (its response turned into a stream, or it was
   * marked long-lived): out of the list and the count, its end recorded as no latency, and the
   * `onDetach` listeners told, so that what they hold for it (the load shedder's slot) is let go.
   */
  detach(timing: RequestTiming, state: 'streaming' | 'long-lived'): void {
    timing.state = state
    this.untrack(timing)
    const listeners = this.#detachListeners
    for (let i = 0; i < listeners.length; i++) listeners[i]!(timing.request)
  }

  /** Calls `listener` for every request that stops counting before it ends (once per listener, however often added). */
  onDetach(listener: DetachListener): void {
    if (!this.#detachListeners.includes(listener)) this.#detachListeners.push(listener)
  }

  /**
   * A protection refused a request it times (`markRefused`): the `onRefused` listeners give back
   * what another protection took for it (the load shedder its slot and its admitted count).
   */
  refused(timing: RequestTiming): void {
    timing.unmeasured = true
    const listeners = this.#refusedListeners
    for (let i = 0; i < listeners.length; i++) listeners[i]!(timing.request)
  }

  /** Calls `listener` for every request a protection refuses (once per listener, however often added). */
  onRefused(listener: DetachListener): void {
    if (!this.#refusedListeners.includes(listener)) this.#refusedListeners.push(listener)
  }

  /**
   * Notices the responses that turned into streams since the last sweep and detaches them; answers
   * how many. Node has no event for "headers sent", and a per-response hook on `writeHead` would
   * cost every request: a walk over the requests in flight on a timer costs nothing per request.
   * Runs after every event-loop sample, and whenever a reader needs the figures fresh (the load
   * shedder's control step and full limit, the degradation controller's evaluation).
   */
  sweep(): number {
    let found = 0
    const requests = this.requests
    for (let timing = requests.oldest; timing !== undefined;) {
      const next = requests.after(timing)
      if (timing.streaming) {
        this.detach(timing, 'streaming')
        found++
      }
      timing = next
    }
    return found
  }

  /** The requests in flight read as latency samples at `quantile` (see `InFlightRequests.latencyAt`). */
  inFlightLatency(quantile: number): InFlightLatency {
    return this.requests.latencyAt(quantile, this.now(), this.#recorded)
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
export function sharedMeter(server: object, options?: ServerMeterOptions, fail: OptionsErrorFactory = coreError): ServerMeter {
  const meters = registry()
  let meter = meters.get(server)
  if (meter === undefined) {
    meter = new ServerMeter(options, fail)
    meters.set(server, meter)
    return meter
  }
  const conflict = meter.conflictsWith(options)
  if (conflict !== undefined) throw fail(conflict)
  return meter
}
