import type { FastifyInstance } from 'fastify'
import type { SimulatedDatabase } from './database.js'

/** The priorities the shop's routes use (`critical` is unused: nothing here outranks checkout). */
export const SHOP_PRIORITIES = ['high', 'normal', 'low'] as const
export type ShopPriority = (typeof SHOP_PRIORITIES)[number]

type PerPriority = Record<ShopPriority, number>

/**
 * Everything the dashboard, the demo's live view and `/metrics` show, read from the plugins'
 * public state (`fastify.loadShedding.state`, `fastify.degradation.status()`,
 * `fastify.rateLimit.stats()`). Counters are totals since start; `rates` are per second over the
 * last tick.
 */
export interface ShopSnapshot {
  /** Wall clock, ms since the epoch. */
  at: number
  protection: boolean
  database: { poolSize: number, inUse: number, waiting: number, slowdown: number, poolTimeouts: number }
  loadShedding: null | {
    pressure: number
    overloaded: boolean
    limit: number
    inFlight: number
    admittedLevels: number
    levels: number
    admitsDownTo: string
    eventLoopDelayP99Ms: number
    utilization: number
    shedTotal: PerPriority
    admittedTotal: PerPriority
  }
  degradation: null | {
    level: number
    forcedLevel: number | null
    latencyMs: number | null
    featuresOff: string[]
    features: Array<{ name: string, on: boolean, offAtLevel: number, fallbacksServed: number }>
  }
  rateLimit: null | { store: string, degraded: boolean, allowedTotal: number, limitedTotal: number }
  /** Per second over the last tick; zero on the first one. */
  rates: { shedPerSecond: PerPriority, admittedPerSecond: PerPriority, limitedPerSecond: number }
}

function perPriority(read: (priority: ShopPriority) => number): PerPriority {
  return { high: read('high'), normal: read('normal'), low: read('low') }
}

const ZERO: PerPriority = { high: 0, normal: 0, low: 0 }

/** Reads the current state; `previous` (an earlier snapshot) turns counters into rates. */
export function takeSnapshot(app: FastifyInstance, protection: boolean, database: SimulatedDatabase, previous?: ShopSnapshot): ShopSnapshot {
  const at = Date.now()
  let loadShedding: ShopSnapshot['loadShedding'] = null
  let degradation: ShopSnapshot['degradation'] = null
  let rateLimit: ShopSnapshot['rateLimit'] = null
  if (protection) {
    const state = app.loadShedding.state
    loadShedding = {
      pressure: state.pressure,
      overloaded: state.overloaded,
      limit: state.limit,
      inFlight: state.inFlight,
      admittedLevels: state.threshold.admittedLevels,
      levels: state.threshold.levels,
      admitsDownTo: `${state.threshold.admitsDownTo.priority} (cohort ${state.threshold.admitsDownTo.cohort})`,
      eventLoopDelayP99Ms: state.signals.eventLoop.delayP99Ms,
      utilization: state.signals.eventLoop.utilization,
      shedTotal: perPriority((p) => Object.values(state.shed[p]).reduce((sum, n) => sum + n, 0)),
      admittedTotal: perPriority((p) => state.admitted[p])
    }
    const status = app.degradation.status()
    degradation = {
      level: status.level,
      forcedLevel: status.forcedLevel,
      latencyMs: status.reading === null ? null : status.reading.latencyMs,
      featuresOff: status.features.filter((f) => !f.on).map((f) => f.name),
      features: status.features.map((f) => ({ name: f.name, on: f.on, offAtLevel: f.offAtLevel, fallbacksServed: f.fallbacksServed }))
    }
    const stats = app.rateLimit.stats()
    rateLimit = { store: app.rateLimit.store, degraded: stats.degraded, allowedTotal: stats.allowed, limitedTotal: stats.limited }
  }
  const seconds = previous === undefined ? 0 : (at - previous.at) / 1000
  const rate = (now: number, before: number | undefined): number => (seconds > 0 && before !== undefined ? Math.max(0, now - before) / seconds : 0)
  const rates: ShopSnapshot['rates'] = {
    shedPerSecond: loadShedding === null ? ZERO : perPriority((p) => rate(loadShedding.shedTotal[p], previous?.loadShedding?.shedTotal[p])),
    admittedPerSecond: loadShedding === null ? ZERO : perPriority((p) => rate(loadShedding.admittedTotal[p], previous?.loadShedding?.admittedTotal[p])),
    limitedPerSecond: rateLimit === null ? 0 : rate(rateLimit.limitedTotal, previous?.rateLimit?.limitedTotal)
  }
  return {
    at,
    protection,
    database: { poolSize: database.poolSize, inUse: database.inUse, waiting: database.waiting, slowdown: database.slowdown, poolTimeouts: database.timeouts },
    loadShedding,
    degradation,
    rateLimit,
    rates
  }
}
