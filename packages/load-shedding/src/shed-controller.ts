/**
 * The load shedder's control loop around its limiter, framework-free: its own event-loop sampler
 * and one control step every `intervalMs` (pressure handed to whoever wants it), the cohort of a
 * request, how far into the current loop turn it was read, and the run queue that holds the
 * requests that must wait their turn. `acquire` is the per-request decision with all of that.
 */
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks'
import { EventLoopSignals, type Clock } from '@spillway/latency-window/core'
import { cohortEpoch, cohortOf } from './cohort.js'
import { ADMIT, QUEUED, SHED_QUEUE, type Decision, type Refusal } from './decision.js'
import type { LoopReading } from './delay-detector.js'
import { LoopTurn } from './loop-turn.js'
import type { LoadSheddingConfig } from './options.js'
import { PriorityLimiter } from './priority-limiter.js'
import { RunQueue } from './run-queue.js'
import type { LoadSheddingState } from './shedding-state.js'

/** How the request protocol runs or refuses a request that waited in the run queue. */
export interface QueuedRequestHandlers<T> {
  /** Its turn came and it holds a slot: let it continue. */
  run(item: T): void
  /** Refuse it: it waited past its priority's `maxQueueMs`, or found no slot under the limit (counted already). */
  refuse(item: T, rank: number, refusal: Refusal): void
  /** Whether its client went away while it waited: it is then dropped without running. */
  gone(item: T): boolean
}

export interface ShedControllerHooks<T = never> {
  /** The clock of the request start times handed to `acquire` (the shared meter's). */
  now: Clock
  /** Called after every control step with the pressure (0–1), for the shared meter. */
  publishPressure?: (pressure: number) => void
  /** Called after every control step with the state (the update channel). */
  onUpdate?: (state: LoadSheddingState) => void
  /** Without them there is no run queue: `acquire` never answers `QUEUED`. */
  queued?: QueuedRequestHandlers<T>
  /**
   * The shared meter's sweep, which lets go of admitted requests whose responses turned into
   * streams: run at every control step, and when the concurrency limit is full.
   */
  sweep?: () => void
}

const NS_PER_MS = 1e6
const IDLE_LOOP: LoopReading = { delayP50Ms: 0, delayP99Ms: 0, delayMaxMs: 0, utilization: 0, sampledAt: 0 }

export class ShedController<T = never> {
  readonly config: LoadSheddingConfig<never>
  readonly limiter: PriorityLimiter
  /** The clock of the request start times (the shared meter's). */
  readonly now: Clock
  readonly #now: Clock
  readonly #publishPressure: ((pressure: number) => void) | undefined
  readonly #onUpdate: ((state: LoadSheddingState) => void) | undefined
  readonly #sweep: (() => void) | undefined
  readonly #delay: IntervalHistogram
  readonly #eventLoop: EventLoopSignals
  readonly #turn = new LoopTurn()
  readonly #queue: RunQueue<T> | undefined
  #epoch: number
  #roundRobin = 0
  #lastUpdate: number
  #timer: NodeJS.Timeout | undefined

  constructor(config: LoadSheddingConfig<never>, hooks: ShedControllerHooks<T>) {
    this.config = config
    this.now = hooks.now
    this.#now = hooks.now
    this.#publishPressure = hooks.publishPressure
    this.#onUpdate = hooks.onUpdate
    this.#sweep = hooks.sweep
    this.limiter = new PriorityLimiter({ ...config, queueHeadroom: config.queue?.headroom ?? 0, reclaim: hooks.sweep })
    // Our own sampler, read by the control step itself, rather than the shared meter's: the shared
    // one ticks every 500 ms by default, too slow to catch a CPU overload before clients time out.
    this.#delay = monitorEventLoopDelay({ resolution: 5 })
    this.#eventLoop = new EventLoopSignals({
      intervalMs: config.intervalMs,
      sources: { delay: this.#delay, eventLoopUtilization: performance.eventLoopUtilization.bind(performance), now: hooks.now }
    })
    const { queued } = hooks
    // Shadow mode changes nothing, so it reorders nothing either.
    this.#queue = config.queue === undefined || queued === undefined || config.mode === 'shadow'
      ? undefined
      : new RunQueue<T>({
        now: hooks.now,
        ranks: config.maxQueueMs.length,
        turnBudgetMs: config.queue.turnBudgetMs,
        maxLength: config.queue.maxLength,
        maxWaitMs: config.maxQueueMs,
        run: (item, rank) => {
          if (queued.gone(item)) return
          const decision = this.limiter.acquire(rank)
          if (decision.outcome === 'admit') queued.run(item)
          else queued.refuse(item, rank, decision)
        },
        expire: (item, rank) => {
          this.limiter.countShed(rank, SHED_QUEUE)
          if (!queued.gone(item)) queued.refuse(item, rank, SHED_QUEUE)
        }
      })
    this.#epoch = cohortEpoch(Date.now(), config.cohortRotateMs)
    this.#lastUpdate = hooks.now()
  }

  /** Starts the sampler and the control loop (an unref'd timer). */
  start(): void {
    if (this.config.eventLoop) this.#delay.enable()
    this.#lastUpdate = this.#now()
    clearInterval(this.#timer)
    this.#timer = setInterval(() => this.update(), this.config.intervalMs)
    this.#timer.unref()
  }

  /** Stops the control loop and refuses whatever still waits in the run queue. */
  stop(): void {
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#delay.disable()
    this.#queue?.clear()
  }

  get running(): boolean {
    return this.#timer !== undefined
  }

  #readLoop(elapsedMs: number): LoopReading {
    if (!this.config.eventLoop) return IDLE_LOOP
    // No delay sample at all means the loop was blocked for the whole interval: that is the delay.
    if (this.#delay.count === 0) {
      const reading = this.#eventLoop.sample()
      return { ...reading, delayP50Ms: elapsedMs, delayP99Ms: elapsedMs, delayMaxMs: elapsedMs }
    }
    // The median first: sample() resets the histogram.
    const delayP50Ms = this.#delay.percentile(50) / NS_PER_MS
    return { ...this.#eventLoop.sample(), delayP50Ms }
  }

  /** One control step: read the signals, move the threshold and the limit, publish the pressure. */
  update(): LoadSheddingState {
    // Streams let go first, so that the step's concurrency reads what the server is working on.
    this.#sweep?.()
    const at = this.#now()
    const reading = this.#readLoop(at - this.#lastUpdate)
    const pressure = this.limiter.update(at, at - this.#lastUpdate, reading, this.#queue?.takeCounts())
    this.#lastUpdate = at
    // Wall clock, so that every instance of a fleet rotates its cohorts at the same moment.
    this.#epoch = cohortEpoch(Date.now(), this.config.cohortRotateMs)
    this.#publishPressure?.(pressure)
    const state = this.limiter.state
    this.#onUpdate?.(state)
    return state
  }

  /** The request's cohort: hashed from its key (the same users shed together), else round-robin. */
  cohort(key: unknown): number {
    if (typeof key === 'string') return cohortOf(key, this.#epoch, this.config.cohorts)
    const cohorts = this.config.cohorts
    return this.#roundRobin = this.#roundRobin + 1 === cohorts ? 0 : this.#roundRobin + 1
  }

  /** Whether the deadline header's value (Unix epoch ms) has passed. */
  pastDeadline(header: unknown): boolean {
    if (typeof header !== 'string') return false
    const deadline = Number(header)
    return Number.isFinite(deadline) && Date.now() > deadline
  }

  /**
   * The decision with the run queue: `ADMIT` (run it now; it counts in flight, `release` it when
   * it ends), `QUEUED` (it must wait its turn: hand it to `enqueue`) or a refusal, counted. In
   * shadow mode the request always goes on (see `PriorityLimiter`). Nothing is allocated unless
   * the request has to wait.
   */
  acquire(rank: number, cohort: number, startedAt: number): Decision {
    const turnElapsed = this.#turn.elapsed(startedAt)
    const screened = this.limiter.screen(rank, cohort, turnElapsed)
    if (screened !== ADMIT) return screened
    if (this.#queue !== undefined && this.#queue.mustWait(turnElapsed)) return QUEUED
    return this.limiter.acquire(rank)
  }

  /**
   * Queues a request `acquire` answered `QUEUED` for: the controller later calls `run` or
   * `refuse` on `item`. Answers `QUEUED`, or `SHED_QUEUE`, counted, when the queue is full.
   */
  enqueue(rank: number, startedAt: number, item: T): Decision {
    if (this.#queue?.push(rank, item, startedAt) === true) return QUEUED
    this.limiter.countShed(rank, SHED_QUEUE)
    return SHED_QUEUE
  }

  /** Requests waiting in the run queue. */
  get queueLength(): number {
    return this.#queue?.length ?? 0
  }

  /** Ends an admitted request: its latency feeds the limit; a 5xx or an abort counts as a drop. */
  release(latencyMs: number, dropped: boolean): void {
    this.limiter.release(latencyMs, dropped)
  }

  /** An admitted request of `rank` that another protection refused: see `PriorityLimiter.withdraw`. */
  withdraw(rank: number): void {
    this.limiter.withdraw(rank)
  }
}
