import { EventLoopDelayDetector, type LoopReading } from './delay-detector.js'
import { LimitDetector } from './limit-detector.js'
import { QueueingDetector } from './queueing-detector.js'
import { RunQueueDetector } from './run-queue-detector.js'
import type { RunQueueReading } from './run-queue.js'
import { UserSignalsDetector, type LoadSignal } from './user-signals-detector.js'
import { UtilizationDetector } from './utilization-detector.js'

export interface OverloadSignalsOptions {
  targetDelayMs: number
  minUtilization: number
  maxUtilization: number
  /** With the run queue: share of the served rate admitted past it while the queue refuses work. */
  queueHeadroom: number
  signals: Readonly<Record<string, LoadSignal>>
}

/** What the signals said in one control step. */
export interface OverloadVerdict {
  overloaded: boolean
  /** The worst signal's severity (1 = just at its limit). */
  severity: number
  /** The CPU signals' share of it: the run queue's, or else the event loop's. */
  cpuSeverity: number
  /** A signal other than the CPU's said overload (the limiter, socket waits, a user signal). */
  otherOverloaded: boolean
  /** The run queue's measured ceiling on the admitted rate, when it expired requests. */
  ceiling: number | undefined
  /** The loop's backlog is draining fast: the previous cut taking effect. */
  draining: boolean
  /**
   * Only signals that one stall of the event loop can raise said overload: the CPU's (the run
   * queue's expiries, the loop's delay and utilization) and the loop-turn guard's. Not the
   * limiter's nor the user's.
   */
  loopOnly: boolean
}

/**
 * Every overload signal, combined once per control step. The CPU is judged by the run queue when
 * there is one (its expiries), else by the event loop (median delay while busy, or smoothed
 * utilization); concurrency, socket waits and the user's signals add to either. A backlog that is
 * draining fast (median delay down by a quarter or more) while only the loop says overload is the
 * previous cut taking effect: cutting again would overshoot, relaxing would refill it.
 */
export class OverloadSignals {
  readonly delay: EventLoopDelayDetector
  readonly utilization: UtilizationDetector
  readonly runQueue: RunQueueDetector
  readonly limit = new LimitDetector()
  readonly queueing = new QueueingDetector()
  readonly user: UserSignalsDetector
  /** The last step's event-loop figures. */
  eventLoop: LoopReading = { delayP50Ms: 0, delayP99Ms: 0, delayMaxMs: 0, utilization: 0, sampledAt: 0 }
  readonly #verdict: OverloadVerdict = {
    overloaded: false, severity: 0, cpuSeverity: 0, otherOverloaded: false, ceiling: undefined, draining: false, loopOnly: false
  }

  constructor(options: OverloadSignalsOptions) {
    this.delay = new EventLoopDelayDetector(options.targetDelayMs, options.minUtilization)
    this.utilization = new UtilizationDetector(options.maxUtilization)
    this.runQueue = new RunQueueDetector(options.queueHeadroom)
    this.user = new UserSignalsDetector(options.signals)
  }

  /** Reads every signal for one interval; the verdict object is reused from step to step. */
  assess(
    eventLoop: LoopReading, queue: RunQueueReading | undefined, servedPerSecond: number, peakInFlight: number, limit: number
  ): Readonly<OverloadVerdict> {
    this.eventLoop = eventLoop
    this.delay.sample(eventLoop)
    this.utilization.sample(eventLoop.utilization)
    let overloaded = false
    let severity = 0
    let ceiling: number | undefined
    if (queue !== undefined) {
      this.runQueue.sample(queue, servedPerSecond)
      if (this.runQueue.overloaded) {
        overloaded = true
        severity = this.runQueue.severity
        ceiling = this.runQueue.ceiling
      }
    } else {
      if (this.delay.overloaded) {
        overloaded = true
        severity = this.delay.severity
      }
      if (this.utilization.overloaded) {
        overloaded = true
        severity = Math.max(severity, this.utilization.severity)
      }
    }
    const cpuSeverity = severity
    this.limit.sample(peakInFlight, limit)
    this.queueing.sample()
    this.user.sample()
    let otherOverloaded = false
    for (const detector of [this.limit, this.queueing, this.user]) {
      if (!detector.overloaded) continue
      otherOverloaded = true
      severity = Math.max(severity, detector.severity)
    }
    const verdict = this.#verdict
    verdict.overloaded = overloaded || otherOverloaded
    verdict.severity = severity
    verdict.cpuSeverity = cpuSeverity
    verdict.otherOverloaded = otherOverloaded
    verdict.ceiling = ceiling
    verdict.draining = queue === undefined && cpuSeverity > 0 && severity === cpuSeverity && this.delay.falling
    verdict.loopOnly = verdict.overloaded && !this.limit.overloaded && !this.user.overloaded
    return verdict
  }
}
