/**
 * The load shedder as it stands in front of requests, without a framework: the control loop (its
 * own event-loop sampler, one step every `intervalMs`, pressure handed to whoever wants it), the
 * per-request decision (deadline, cohort, loop turn, priority threshold and limit), the jittered
 * Retry-After and the precomputed refusal bodies. The Fastify plugin and the Express middleware
 * (in `@spillway/express`) only read the priority and keys from their request and write the answer.
 */
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks'
import { EventLoopSignals, problemDetails, retryAfterSeconds, type Clock } from '@spillway/latency-window/core'
import { cohortEpoch, cohortOf } from './cohort.js'
import { LoadShedder, type LoadSheddingState, type LoopReading } from './load-shedder.js'
import { LoopTurn } from './loop-turn.js'
import type { NormalizedOptions } from './options.js'
import { RunQueue } from './run-queue.js'
import { ADMIT, QUEUED, SHED_QUEUE, SHED_REASONS } from './shed-reason.js'

/** How the framework's glue runs or refuses a request that waited in the run queue. */
export interface QueuedRequestHandlers<T> {
  /** Its turn came and it holds a slot: let it continue (call `next`, `done`…). */
  run(item: T): void
  /** Refuse it: it waited past its priority's `maxQueueMs`, or found no slot under the limit. */
  refuse(item: T, rank: number, reason: number): void
  /** Whether its client went away while it waited: it is then dropped without running. */
  gone(item: T): boolean
}

export interface ShedGateOptions<T = never> {
  /** The clock of the request start times handed to `decide` (the shared meter's). */
  now: Clock
  /** Called after every control step with the pressure (0–1), for the shared meter. */
  publishPressure?: (pressure: number) => void
  /** Called after every control step with the state (the update channel). */
  onUpdate?: (state: LoadSheddingState) => void
  /** Without them there is no run queue: `admit` never answers `QUEUED`. */
  queued?: QueuedRequestHandlers<T>
}

const NS_PER_MS = 1e6
const IDLE_LOOP: LoopReading = { delayP50Ms: 0, delayP99Ms: 0, delayMaxMs: 0, utilization: 0, sampledAt: 0 }

export class ShedGate<T = never> {
  readonly options: NormalizedOptions
  readonly shedder: LoadShedder
  readonly shadow: boolean
  readonly #now: Clock
  readonly #publishPressure: ((pressure: number) => void) | undefined
  readonly #onUpdate: ((state: LoadSheddingState) => void) | undefined
  readonly #delay: IntervalHistogram
  readonly #eventLoop: EventLoopSignals
  readonly #bodies: string[]
  /** Their lengths in bytes, as Content-Length strings. */
  readonly #bodyLengths: string[]
  readonly #turn = new LoopTurn()
  readonly #queue: RunQueue<T> | undefined
  #epoch: number
  #roundRobin = 0
  #lastUpdate: number
  #timer: NodeJS.Timeout | undefined

  constructor(options: NormalizedOptions, gate: ShedGateOptions<T>) {
    this.options = options
    this.shadow = options.mode === 'shadow'
    this.#now = gate.now
    this.#publishPressure = gate.publishPressure
    this.#onUpdate = gate.onUpdate
    this.shedder = new LoadShedder({
      limit: options.limit,
      mode: options.mode,
      cohorts: options.cohorts,
      shares: options.shares,
      targetDelayMs: options.targetDelayMs,
      minUtilization: options.minUtilization,
      maxUtilization: options.maxUtilization,
      tightenRatio: options.tightenRatio,
      maxTightenRatio: options.maxTightenRatio,
      relaxRatio: options.relaxRatio,
      queueHeadroom: options.queue?.headroom ?? 0,
      maxQueueMs: options.maxQueueMs,
      signals: options.signals
    })
    // Our own sampler, read by the control step itself, rather than the shared meter's: the shared
    // one ticks every 500 ms by default (and the first plugin's options win), too slow to catch a
    // CPU overload before clients time out.
    this.#delay = monitorEventLoopDelay({ resolution: 5 })
    this.#eventLoop = new EventLoopSignals({
      intervalMs: options.intervalMs,
      sources: { delay: this.#delay, eventLoopUtilization: performance.eventLoopUtilization.bind(performance), now: gate.now }
    })
    const queued = gate.queued
    // Shadow mode changes nothing, so it reorders nothing either.
    this.#queue = options.queue === undefined || queued === undefined || this.shadow
      ? undefined
      : new RunQueue<T>({
        now: gate.now,
        ranks: options.maxQueueMs.length,
        turnBudgetMs: options.queue.turnBudgetMs,
        maxLength: options.queue.maxLength,
        maxWaitMs: options.maxQueueMs,
        run: (item, rank) => {
          if (queued.gone(item)) return
          const decision = this.shedder.acquire(rank)
          if (decision === ADMIT) queued.run(item)
          else queued.refuse(item, rank, decision)
        },
        expire: (item, rank) => {
          this.shedder.countShed(rank, SHED_QUEUE)
          if (!queued.gone(item)) queued.refuse(item, rank, SHED_QUEUE)
        }
      })
    this.#epoch = cohortEpoch(Date.now(), options.cohortRotateMs)
    this.#lastUpdate = gate.now()
    const { statusCode } = options
    // Precomputed bodies: a refusal serializes nothing.
    this.#bodies = SHED_REASONS.map((reason) => JSON.stringify(problemDetails(
      statusCode,
      statusCode === 503 ? 'Service Unavailable' : 'Too Many Requests',
      reason === 'deadline'
        ? 'The request arrived after its deadline.'
        : 'The server is overloaded and shed this request; retry after the delay in Retry-After.',
      { reason }
    )))
    this.#bodyLengths = this.#bodies.map((body) => String(Buffer.byteLength(body)))
  }

  /** Starts the sampler and the control loop (an unref'd timer). */
  start(): void {
    if (this.options.eventLoop) this.#delay.enable()
    this.#lastUpdate = this.#now()
    clearInterval(this.#timer)
    this.#timer = setInterval(() => this.update(), this.options.intervalMs)
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
    if (!this.options.eventLoop) return IDLE_LOOP
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
    const at = this.#now()
    const reading = this.#readLoop(at - this.#lastUpdate)
    const pressure = this.shedder.update(at, at - this.#lastUpdate, reading, this.#queue?.takeCounts())
    this.#lastUpdate = at
    // Wall clock, so that every instance of a fleet rotates its cohorts at the same moment.
    this.#epoch = cohortEpoch(Date.now(), this.options.cohortRotateMs)
    this.#publishPressure?.(pressure)
    const state = this.shedder.state
    this.#onUpdate?.(state)
    return state
  }

  /** The request's cohort: hashed from its key (the same users shed together), else round-robin. */
  cohort(key: unknown): number {
    if (typeof key === 'string') return cohortOf(key, this.#epoch, this.options.cohorts)
    const cohorts = this.options.cohorts
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
   * it ends), `QUEUED` (it must wait its turn: hand it to `enqueue`) or the index of a shed reason.
   * In shadow mode the request always goes on (see `LoadShedder.decide`). Nothing is allocated
   * unless the request has to wait.
   */
  admit(rank: number, cohort: number, startedAt: number): number {
    const turnElapsed = this.#turn.elapsed(startedAt)
    const screened = this.shedder.screen(rank, cohort, turnElapsed)
    if (screened !== ADMIT) return screened
    if (this.#queue !== undefined && this.#queue.mustWait(turnElapsed)) return QUEUED
    return this.shedder.acquire(rank)
  }

  /**
   * Queues a request `admit` answered `QUEUED` for: the gate later calls `run` or `refuse` on
   * `item`. Returns `QUEUED`, or `SHED_QUEUE` when the queue is full (refuse it now).
   */
  enqueue(rank: number, startedAt: number, item: T): number {
    if (this.#queue?.push(rank, item, startedAt) === true) return QUEUED
    this.shedder.countShed(rank, SHED_QUEUE)
    return SHED_QUEUE
  }

  /** Requests waiting in the run queue. */
  get queueLength(): number {
    return this.#queue?.length ?? 0
  }

  /** Ends an admitted request: its latency feeds the limit; a 5xx or an abort counts as a drop. */
  release(latencyMs: number, dropped: boolean): void {
    this.shedder.release(latencyMs, dropped)
  }

  /**
   * Jittered ±50% so that refused clients do not all come back in the same second; longer the
   * more is shed, since a deep overload will not clear in a second.
   */
  retryAfterSeconds(): number {
    const { minRetryAfterMs, maxRetryAfterMs } = this.options
    const baseMs = minRetryAfterMs + this.shedder.pressure * (maxRetryAfterMs - minRetryAfterMs)
    return retryAfterSeconds(baseMs * (0.5 + Math.random()))
  }

  /** The serialized problem+json body for a shed reason. */
  body(reason: number): string {
    return this.#bodies[reason] as string
  }

  /** `body(reason)`'s length in bytes, as a Content-Length value. */
  bodyLength(reason: number): string {
    return this.#bodyLengths[reason] as string
  }
}
