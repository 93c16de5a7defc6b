import { PRIORITIES } from '@spillway/latency-window/core'
import { AdmissionLevel } from './admission-level.js'
import { ConcurrencyLimiter } from './concurrency-limiter.js'
import type { LoopReading } from './delay-detector.js'
import { ADMIT, SHED_BACKSTOP, SHED_LIMIT, SHED_QUEUE, SHED_REASONS, SHED_THRESHOLD, type Admit, type Refusal } from './decision.js'
import type { LimitAlgorithm } from './limit-algorithm.js'
import { OverloadSignals } from './overload-signals.js'
import type { RunQueueReading } from './run-queue.js'
import { describeState, type LoadSheddingMode, type LoadSheddingState } from './shedding-state.js'
import type { LoadSignal } from './user-signals-detector.js'

export interface PriorityLimiterOptions {
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
  /** Frees the slots of admitted requests that hold nothing any more (see `ConcurrencyLimiter`). */
  reclaim?: (() => void) | undefined
}

const RANKS = PRIORITIES.length
/** A calm step re-admits at once this share of the capacity remembered from the last overload. */
const CAPACITY_SHARE = 0.9

/**
 * The limiter, framework-free, in the shape of Netflix concurrency-limits: `acquire` answers a
 * named decision (`ADMIT`, or a refusal with its reason) from one priority threshold over
 * (priority, cohort) levels and an adaptive concurrency limit with per-priority shares under it;
 * `update`, once per control interval, reads every overload signal (`OverloadSignals`: event loop,
 * run queue, concurrency, socket waits, the user's) and moves the threshold and the limit.
 *
 * The request path is split in two so that the run queue can sit between them: `screen` (the
 * threshold and the socket-wait guard) on arrival, `acquire` (a slot under the limit) when the
 * request runs; `decide` is both at once. In shadow mode every request counts in flight whatever
 * the answer, and the answer says what enforce mode would have done.
 */
export class PriorityLimiter {
  readonly mode: LoadSheddingMode
  readonly cohorts: number
  readonly limiter: ConcurrencyLimiter
  readonly admission: AdmissionLevel
  readonly signals: OverloadSignals
  readonly options: Readonly<PriorityLimiterOptions>
  /** Shed counts, `rank × reasons + reason`. */
  readonly #shedCounts: Float64Array
  readonly #admittedCounts: Float64Array
  #acquiredInInterval = 0
  #overloaded = false
  /** Whether the last overload was the event loop's: then its headroom says how fast to relax. */
  #cpuBound = false
  #draining = false
  /** Whether the previous step found an overload too: only the second of two in a row moves the threshold. */
  #overloadedBefore = false

  constructor(options: PriorityLimiterOptions) {
    this.options = options
    this.mode = options.mode
    this.cohorts = options.cohorts
    this.limiter = new ConcurrencyLimiter(options.limit, options.shares, options.reclaim)
    this.admission = new AdmissionLevel({
      levels: RANKS * options.cohorts,
      floor: options.cohorts,
      rankSize: options.cohorts,
      tightenRatio: options.tightenRatio,
      maxTightenRatio: options.maxTightenRatio,
      relaxRatio: options.relaxRatio,
      capacityShare: CAPACITY_SHARE,
      holdUpdates: 0
    })
    this.signals = new OverloadSignals(options)
    this.#shedCounts = new Float64Array(RANKS * SHED_REASONS.length)
    this.#admittedCounts = new Float64Array(RANKS)
  }

  /**
   * The whole decision at once. `queuedMs` is how long the request at least waited unread (see
   * `LoopTurn`). `ADMIT`: the request now counts in flight, `release` it when it ends.
   */
  decide(rank: number, cohort: number, queuedMs: number): Admit | Refusal {
    const screened = this.screen(rank, cohort, queuedMs)
    return screened === ADMIT ? this.acquire(rank) : screened
  }

  /** The threshold and the socket-wait guard, not the limiter: a request that passes may still wait for its slot. */
  screen(rank: number, cohort: number, queuedMs: number): Admit | Refusal {
    const level = rank * this.cohorts + cohort
    this.admission.arrivals[level]!++
    if (level >= this.admission.admitted) return this.#shed(rank, SHED_THRESHOLD)
    if (queuedMs > this.options.maxQueueMs[rank]!) {
      this.signals.queueing.refused()
      return this.#shed(rank, SHED_QUEUE)
    }
    return ADMIT
  }

  /** A slot under the concurrency limit, or a refusal. */
  acquire(rank: number): Admit | Refusal {
    if (!this.limiter.tryAcquire(rank)) {
      this.signals.limit.refused()
      return this.#shed(rank, rank === 0 ? SHED_BACKSTOP : SHED_LIMIT)
    }
    this.#admittedCounts[rank]!++
    this.#acquiredInInterval++
    return ADMIT
  }

  #shed(rank: number, refusal: Refusal): Refusal {
    this.#shedCounts[rank * SHED_REASONS.length + refusal.index]!++
    if (this.mode === 'shadow') this.limiter.acquire()
    return refusal
  }

  /**
   * A refusal decided outside `screen` and `acquire` (the deadline, the run queue), so that it
   * shows in the state. In shadow mode the request goes on and counts in flight, as any other.
   */
  refuse(rank: number, refusal: Refusal): Refusal {
    return this.#shed(rank, refusal)
  }

  /** Counts a refusal of a request that already held nothing (the run queue's). */
  countShed(rank: number, refusal: Refusal): void {
    this.#shedCounts[rank * SHED_REASONS.length + refusal.index]!++
  }

  /** An admitted request ended. */
  release(rttMs: number, dropped: boolean): void {
    this.limiter.release(rttMs, dropped)
  }

  /**
   * An admitted request of `rank` that another protection refused (the rate limiter): its slot
   * back with no latency sample, and out of the admitted counts and the served rate, which measure
   * the work the server takes on.
   */
  withdraw(rank: number): void {
    this.limiter.release(-1, false)
    if (this.#admittedCounts[rank]! > 0) this.#admittedCounts[rank]!--
    if (this.#acquiredInInterval > 0) this.#acquiredInInterval--
  }

  /**
   * One control step: updates the limit from the interval's samples, reads the signals and moves
   * the threshold. Returns the new pressure.
   */
  update(nowMs: number, elapsedMs: number, eventLoop: LoopReading, queue?: RunQueueReading): number {
    const peakInFlight = this.limiter.update(nowMs - elapsedMs)
    const servedPerSecond = elapsedMs > 0 ? (this.#acquiredInInterval * 1000) / elapsedMs : 0
    this.#acquiredInInterval = 0
    const verdict = this.signals.assess(eventLoop, queue, servedPerSecond, peakInFlight, this.limiter.limit)
    this.#overloaded = verdict.overloaded
    this.#draining = verdict.draining
    // One step overloaded by the loop's signals alone is not yet a standing overload: one stall of
    // the loop (a garbage collection) makes such a step, its waiters expiring, its served rate
    // measuring the stall, and the burst read right after it counted as new arrivals. As CoDel
    // waits an interval of standing queue before it drops (RFC 8289), the threshold moves from the
    // second overloaded step in a row; meanwhile the run queue and the loop-turn guard still refuse
    // what cannot be served in time. The limiter's and the user's signals, which a stall does not
    // raise, act at once.
    const first = verdict.loopOnly && !this.#overloadedBefore
    this.#overloadedBefore = verdict.overloaded
    if (verdict.draining || first) {
      this.admission.observe(elapsedMs)
      return this.pressure
    }
    const { severity, cpuSeverity, ceiling } = verdict
    if (verdict.overloaded) this.#cpuBound = severity === cpuSeverity && cpuSeverity > 0 && ceiling === undefined
    // After a CPU overload, a calm loop at utilization u can take about maxUtilization / u times
    // the admitted work (handlers dominate the loop's time); capped at +25% a step.
    const utilization = this.signals.utilization.smoothed
    const growth = this.#cpuBound && utilization > 0 ? Math.min(1.25, this.options.maxUtilization / utilization) : 1
    // The queue's ceiling is a measurement; only another signal's overload warrants a blind cut.
    const onlyQueue = ceiling !== undefined && !verdict.otherOverloaded
    this.admission.update(elapsedMs, verdict.overloaded, severity, growth, onlyQueue ? ceiling : undefined)
    return this.pressure
  }

  /** 0 when nothing is shed, 1 when everything but `critical` is. */
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

  /** The live state (a fresh copy on every read). */
  get state(): LoadSheddingState {
    return describeState(this, this.#shedCounts, this.#admittedCounts)
  }
}
