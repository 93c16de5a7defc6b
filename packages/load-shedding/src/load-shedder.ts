import { PRIORITIES, type EventLoopReading, type Priority } from '@spillway/latency-window/core'
import { AdmissionLevel } from './admission-level.js'
import { ConcurrencyLimiter } from './concurrency-limiter.js'
import type { LimitAlgorithm } from './limit-algorithm.js'
import {
  ADMIT, SHED_BACKSTOP, SHED_LIMIT, SHED_QUEUE, SHED_REASONS, SHED_THRESHOLD, type ShedReason
} from './shed-reason.js'

export type LoadSheddingMode = 'enforce' | 'shadow'

/** A user signal: a load ratio where 1 means "at the limit" (heap used / budget, pool wait / target…). */
export type LoadSignal = () => number

/** The event-loop figures of one control interval, with the median delay the overload test reads. */
export interface LoopReading extends EventLoopReading {
  /** Median event-loop delay in the interval, ms. */
  delayP50Ms: number
}

export interface LoadShedderOptions {
  limit: LimitAlgorithm
  mode: LoadSheddingMode
  /** Cohorts per priority. */
  cohorts: number
  /** Share of the concurrency limit per rank (critical, high, normal, low). */
  shares: readonly number[]
  /** Median event-loop delay above which the loop counts as overloaded, ms. */
  targetDelayMs: number
  /** …provided the loop was at least this busy in the interval (0–1). */
  minUtilization: number
  /** Smoothed utilization at or above which the loop counts as overloaded whatever the delay (0–1). */
  maxUtilization: number
  /** Longest a request of each rank may have waited unread in its socket, ms (Infinity: never shed for it). */
  maxQueueMs: readonly number[]
  tightenRatio: number
  maxTightenRatio: number
  relaxRatio: number
  /** With the run queue: share of the served rate admitted past it while the queue refuses work. */
  queueHeadroom: number
  signals: Readonly<Record<string, LoadSignal>>
}

/** What the run queue reports to a control step (see `RunQueue.takeCounts`). */
export interface RunQueueReading {
  /** Requests refused in the interval for waiting past their priority's `maxQueueMs`. */
  expired: number
  /** Requests run from the queue in the interval. */
  dispatched: number
  /** Most requests waiting at once in the interval, and waiting now. */
  peakLength: number
  length: number
}

/** The live state, as `fastify.loadShedding.state` and the status route report it. */
export interface LoadSheddingState {
  mode: LoadSheddingMode
  /** 0 when nothing is shed, 1 when everything but `critical` is. Published to the shared meter. */
  pressure: number
  overloaded: boolean
  /** The last step held the threshold because the loop's backlog was draining. */
  draining: boolean
  /** Concurrency limit and requests in flight (admitted, not yet finished). */
  limit: number
  inFlight: number
  /** Admitted levels out of `levels`; a level is `rank × cohorts + cohort`. */
  threshold: { admittedLevels: number, levels: number, cohorts: number, admitsDownTo: { priority: Priority, cohort: number } }
  /** Arrival rate and admitted arrival rate (smoothed, per second) and the remembered capacity. */
  rates: { arrivalPerSecond: number, admittedPerSecond: number, capacityPerSecond: number }
  signals: {
    eventLoop: {
      delayP50Ms: number, delayP99Ms: number, delayMaxMs: number, utilization: number, smoothedUtilization: number, load: number
    }
    concurrency: { peakInFlight: number, load: number }
    /** The run queue in the last interval (all zero without one). */
    queue: RunQueueReading
    user: Record<string, number>
  }
  /** Requests refused (or, in shadow mode, that would have been) per priority and reason. */
  shed: Record<Priority, Record<ShedReason, number>>
  admitted: Record<Priority, number>
}

const RANKS = PRIORITIES.length

/**
 * The decision, framework-free: one priority threshold over (priority, cohort) levels driven by
 * every overload signal, and an adaptive concurrency limit with per-priority shares under it.
 *
 * - CPU-bound overload, with the run queue (the default; see `RunQueue`): the backlog is moved
 *   into the process, and the queue's expiries are the signal; the threshold is then set from the
 *   rate the saturated loop served (a measurement) plus `queueHeadroom`, not stepped.
 * - CPU-bound overload without it (`queue: false`) shows in the event loop: the queue is in the
 *   kernel's socket buffers, not in the handler, so in-process latency stays flat. Signal: the *median* event-loop delay of the
 *   interval above `targetDelayMs` while the loop was busy ≥ `minUtilization`. When the loop is
 *   saturated, every poll phase works through the whole backlog read from the sockets, so nearly
 *   every delay sample is about one backlog long: the median sees a standing queue (CoDel's
 *   "minimum sojourn above target", RFC 8289), while one long batch, a GC pause or a moment of CPU
 *   stolen by a neighbour moves only the tail (reported as p99/max, not acted on). Second CPU
 *   signal: the utilization, smoothed over two intervals, at or above `maxUtilization`. A loop
 *   that is busy all the time has no headroom even when its delay looks short — which is what
 *   happens once clients start timing out: the loop then spends itself on closing and reopening
 *   connections in many short iterations, and the delay alone would miss the collapse.
 * - IO-bound overload shows in concurrency: the loop idles while requests wait on a pool. The
 *   limit algorithm (Gradient2/AIMD) learns how many requests the dependency can take; when the
 *   limiter had to refuse work in the interval, the threshold tightens too, so that the cheap,
 *   smooth, cohort-wise threshold — not the blunt limiter — does the bulk of the shedding.
 * - Queueing, per request: how long a request at least sat unread in its socket (how far into
 *   the current loop turn it was read; see `LoopTurn`). Above its priority's `maxQueueMs` it is
 *   shed at once — the guard that acts within one long turn, before any interval-based signal
 *   can, and that counts as overload for the threshold.
 * - User signals: ratios ≥ 1 mean overloaded.
 */
export class LoadShedder {
  readonly mode: LoadSheddingMode
  readonly cohorts: number
  readonly limiter: ConcurrencyLimiter
  readonly admission: AdmissionLevel
  readonly options: Readonly<LoadShedderOptions>
  /** Shed counts, `rank × reasons + reason`. */
  readonly #shedCounts: Float64Array
  readonly #admittedCounts: Float64Array
  #limitShedInInterval = 0
  #acquiredInInterval = 0
  /** Smoothed rate served while the run queue was never empty: the loop's measured capacity. */
  #servedCapacity = 0
  #queue: RunQueueReading = { expired: 0, dispatched: 0, peakLength: 0, length: 0 }
  #queueShedInInterval = 0
  #overloaded = false
  #eventLoop: LoopReading = { delayP50Ms: 0, delayP99Ms: 0, delayMaxMs: 0, utilization: 0, sampledAt: 0 }
  #eventLoopLoad = 0
  #utilization = 0
  /** Whether the last overload was the event loop's: then its headroom says how fast to relax. */
  #cpuBound = false
  #previousDelayP50Ms = 0
  #draining = false
  #peakInFlight = 0
  #user: Record<string, number> = {}

  constructor(options: LoadShedderOptions) {
    this.options = options
    this.mode = options.mode
    this.cohorts = options.cohorts
    this.limiter = new ConcurrencyLimiter(options.limit, options.shares)
    this.admission = new AdmissionLevel({
      levels: RANKS * options.cohorts,
      floor: options.cohorts,
      rankSize: options.cohorts,
      tightenRatio: options.tightenRatio,
      maxTightenRatio: options.maxTightenRatio,
      relaxRatio: options.relaxRatio,
      holdUpdates: 0
    })
    this.#shedCounts = new Float64Array(RANKS * SHED_REASONS.length)
    this.#admittedCounts = new Float64Array(RANKS)
  }

  /**
   * The hot path. `queuedMs` is how long the request at least waited unread (see `LoopTurn`).
   * Returns `ADMIT` (the request now counts in flight: call `release` when it ends)
   * or a shed reason. In shadow mode the request is counted in flight whatever the answer, and the
   * answer says what enforce mode would have done.
   */
  decide(rank: number, cohort: number, queuedMs: number): number {
    const reason = this.screen(rank, cohort, queuedMs)
    return reason === ADMIT ? this.acquire(rank) : reason
  }

  /**
   * The first half of `decide`: the threshold and the loop-turn guard, not the limiter. A request
   * that passes may wait in the run queue and take its slot (`acquire`) when its turn comes.
   */
  screen(rank: number, cohort: number, queuedMs: number): number {
    const level = rank * this.cohorts + cohort
    this.admission.arrivals[level]!++
    if (level >= this.admission.admitted) return this.#shed(rank, SHED_THRESHOLD)
    if (queuedMs > this.options.maxQueueMs[rank]!) {
      this.#queueShedInInterval++
      return this.#shed(rank, SHED_QUEUE)
    }
    return ADMIT
  }

  /** The second half of `decide`: a slot under the concurrency limit, or a shed reason. */
  acquire(rank: number): number {
    if (!this.limiter.tryAcquire(rank)) {
      this.#limitShedInInterval++
      return this.#shed(rank, rank === 0 ? SHED_BACKSTOP : SHED_LIMIT)
    }
    this.#admittedCounts[rank]!++
    this.#acquiredInInterval++
    return ADMIT
  }

  #shed(rank: number, reason: number): number {
    this.#shedCounts[rank * SHED_REASONS.length + reason]!++
    if (this.mode === 'shadow') this.limiter.acquire()
    return reason
  }

  /** Counts a refusal decided outside (the deadline check, the run queue), so it shows in the state. */
  countShed(rank: number, reason: number): void {
    this.#shedCounts[rank * SHED_REASONS.length + reason]!++
  }

  /** An admitted request ended. */
  release(rttMs: number, dropped: boolean): void {
    this.limiter.release(rttMs, dropped)
  }

  /**
   * One control step: updates the limit from the interval's samples, reads the signals and moves
   * the threshold. Returns the new pressure.
   */
  update(nowMs: number, elapsedMs: number, eventLoop: LoopReading, queue?: RunQueueReading): number {
    const { targetDelayMs, minUtilization, signals } = this.options
    this.#peakInFlight = this.limiter.update(nowMs - elapsedMs)
    this.#eventLoop = eventLoop
    this.#eventLoopLoad = eventLoop.delayP50Ms / targetDelayMs
    const servedPerSecond = elapsedMs > 0 ? (this.#acquiredInInterval * 1000) / elapsedMs : 0
    this.#acquiredInInterval = 0
    let overloaded = false
    let severity = 0
    // Two intervals' worth of smoothing: one busy interval is a burst, two in a row are load.
    this.#utilization = 0.5 * this.#utilization + 0.5 * eventLoop.utilization
    let ceiling: number | undefined
    if (queue !== undefined) {
      // With the run queue the CPU-bound backlog is in the process and the queue's own expiries
      // are the signal: a busy loop whose waiting requests are served in time is at capacity, not
      // past it. On an expiry the threshold admits the measured capacity plus `queueHeadroom` and
      // the queue refuses the excess, so that it never runs dry (an idle CPU is goodput lost)
      // while the threshold does the bulk of the shedding.
      this.#queue = queue
      // Requests were still waiting at the end, or waited too long: the loop was saturated all
      // interval, so what it served is what it can do.
      if (queue.length > 0 || queue.expired > 0) {
        this.#servedCapacity = this.#servedCapacity === 0 ? servedPerSecond : 0.7 * this.#servedCapacity + 0.3 * servedPerSecond
      }
      if (queue.expired > 0) {
        overloaded = true
        severity = 1
        ceiling = Math.max(servedPerSecond, this.#servedCapacity) * (1 + this.options.queueHeadroom)
      }
    } else {
      if (this.#eventLoopLoad > 1 && eventLoop.utilization >= minUtilization) {
        overloaded = true
        severity = this.#eventLoopLoad
      }
      if (this.#utilization >= this.options.maxUtilization) {
        overloaded = true
        severity = Math.max(severity, 1)
      }
    }
    const cpuSeverity = severity
    let otherOverloaded = false
    if (this.#limitShedInInterval > 0) {
      otherOverloaded = true
      severity = Math.max(severity, this.#peakInFlight / Math.max(1, this.limiter.limit))
    }
    this.#limitShedInInterval = 0
    if (this.#queueShedInInterval > 0) {
      otherOverloaded = true
      severity = Math.max(severity, 1)
    }
    this.#queueShedInInterval = 0
    for (const name in signals) {
      let value = 0
      try {
        value = Number(signals[name]!())
      } catch {
        // A throwing user signal must not stop the controller; it reads as "no pressure".
      }
      if (!Number.isFinite(value)) value = 0
      this.#user[name] = value
      if (value >= 1) {
        otherOverloaded = true
        severity = Math.max(severity, value)
      }
    }
    // A backlog that is draining fast (median delay down by a quarter or more since the last step)
    // is the previous cut taking effect: cutting again would overshoot, relaxing would refill it.
    // Hold, unless something other than the loop says overload.
    if (otherOverloaded) overloaded = true
    this.#draining = queue === undefined && cpuSeverity > 0 && severity === cpuSeverity &&
      eventLoop.delayP50Ms < 0.75 * this.#previousDelayP50Ms
    this.#previousDelayP50Ms = eventLoop.delayP50Ms
    this.#overloaded = overloaded
    if (this.#draining) {
      this.admission.observe(elapsedMs)
      return this.pressure
    }
    if (overloaded) this.#cpuBound = severity === cpuSeverity && cpuSeverity > 0 && ceiling === undefined
    // After a CPU overload, a calm loop at utilization u can take about maxUtilization / u times
    // the admitted work (handlers dominate the loop's time); capped at +25% a step.
    const growth = this.#cpuBound && this.#utilization > 0
      ? Math.min(1.25, this.options.maxUtilization / this.#utilization)
      : 1
    // The queue's ceiling is a measurement; only another signal's overload warrants a blind cut.
    const onlyQueue = ceiling !== undefined && !otherOverloaded
    this.admission.update(elapsedMs, overloaded, severity, growth, onlyQueue ? ceiling : undefined)
    return this.pressure
  }

  get pressure(): number {
    return this.admission.shedShare
  }

  get overloaded(): boolean {
    return this.#overloaded
  }

  /** The last step found the loop's backlog draining and held the threshold. */
  get draining(): boolean {
    return this.#draining
  }

  get state(): LoadSheddingState {
    const admittedLevels = this.admission.admitted
    const lastLevel = Math.max(0, admittedLevels - 1)
    const shed = {} as Record<Priority, Record<ShedReason, number>>
    const admitted = {} as Record<Priority, number>
    PRIORITIES.forEach((priority, rank) => {
      const byReason = {} as Record<ShedReason, number>
      SHED_REASONS.forEach((reason, index) => {
        byReason[reason] = this.#shedCounts[rank * SHED_REASONS.length + index] ?? 0
      })
      shed[priority] = byReason
      admitted[priority] = this.#admittedCounts[rank] ?? 0
    })
    return {
      mode: this.mode,
      pressure: this.pressure,
      overloaded: this.#overloaded,
      draining: this.#draining,
      limit: this.limiter.limit,
      inFlight: this.limiter.inFlight,
      threshold: {
        admittedLevels,
        levels: this.admission.levels,
        cohorts: this.cohorts,
        admitsDownTo: { priority: PRIORITIES[Math.floor(lastLevel / this.cohorts)] ?? 'low', cohort: lastLevel % this.cohorts }
      },
      rates: {
        arrivalPerSecond: this.admission.arrivalRatePerSecond,
        admittedPerSecond: this.admission.admittedRatePerSecond,
        capacityPerSecond: this.admission.capacityPerSecond
      },
      signals: {
        eventLoop: {
          delayP50Ms: this.#eventLoop.delayP50Ms,
          delayP99Ms: this.#eventLoop.delayP99Ms,
          delayMaxMs: this.#eventLoop.delayMaxMs,
          utilization: this.#eventLoop.utilization,
          smoothedUtilization: this.#utilization,
          load: this.#eventLoopLoad
        },
        concurrency: { peakInFlight: this.#peakInFlight, load: this.#peakInFlight / Math.max(1, this.limiter.limit) },
        queue: { ...this.#queue },
        user: { ...this.#user }
      },
      shed,
      admitted
    }
  }
}

