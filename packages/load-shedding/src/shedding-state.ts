import { PRIORITIES, type Priority } from '@spillway/latency-window/core'
import { SHED_REASONS, type ShedReason } from './decision.js'
import type { PriorityLimiter } from './priority-limiter.js'
import type { RunQueueReading } from './run-queue.js'

export type LoadSheddingMode = 'enforce' | 'shadow'

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

/** A fresh snapshot of the limiter's state, from its counters (`rank × reasons + reason`, and per rank). */
export function describeState(limiter: PriorityLimiter, shedCounts: Float64Array, admittedCounts: Float64Array): LoadSheddingState {
  const { admission, cohorts, signals } = limiter
  const admittedLevels = admission.admitted
  const lastLevel = Math.max(0, admittedLevels - 1)
  const shed = {} as Record<Priority, Record<ShedReason, number>>
  const admitted = {} as Record<Priority, number>
  PRIORITIES.forEach((priority, rank) => {
    const byReason = {} as Record<ShedReason, number>
    SHED_REASONS.forEach((reason, index) => {
      byReason[reason] = shedCounts[rank * SHED_REASONS.length + index] ?? 0
    })
    shed[priority] = byReason
    admitted[priority] = admittedCounts[rank] ?? 0
  })
  const loop = signals.eventLoop
  const { peakInFlight } = signals.limit
  return {
    mode: limiter.mode,
    pressure: limiter.pressure,
    overloaded: limiter.overloaded,
    draining: limiter.draining,
    limit: limiter.limiter.limit,
    inFlight: limiter.limiter.inFlight,
    threshold: {
      admittedLevels,
      levels: admission.levels,
      cohorts,
      admitsDownTo: { priority: PRIORITIES[Math.floor(lastLevel / cohorts)] ?? 'low', cohort: lastLevel % cohorts }
    },
    rates: {
      arrivalPerSecond: admission.arrivalRatePerSecond,
      admittedPerSecond: admission.admittedRatePerSecond,
      capacityPerSecond: admission.capacityPerSecond
    },
    signals: {
      eventLoop: {
        delayP50Ms: loop.delayP50Ms,
        delayP99Ms: loop.delayP99Ms,
        delayMaxMs: loop.delayMaxMs,
        utilization: loop.utilization,
        smoothedUtilization: signals.utilization.smoothed,
        load: signals.delay.load
      },
      concurrency: { peakInFlight, load: peakInFlight / Math.max(1, limiter.limiter.limit) },
      queue: { ...signals.runQueue.reading },
      user: { ...signals.user.values }
    },
    shed,
    admitted
  }
}
