import type { EventLoopUtilization } from 'node:perf_hooks'
import type { EventLoopSources } from '../../src/event-loop-signals.js'

/**
 * Event-loop sources a test drives: a delay histogram it fills (ms) and a busy/idle time it sets.
 * For the sampler's own tests and for readers of a meter's figures (degradation's).
 */
export function fakeEventLoop() {
  let delaysNs: number[] = []
  let active = 0
  let idle = 0
  let enabled = false
  const sources: EventLoopSources = {
    delay: {
      get count() { return delaysNs.length },
      get max() { return Math.max(0, ...delaysNs) },
      percentile(p: number) {
        const sorted = [...delaysNs].sort((a, b) => a - b)
        return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0
      },
      reset() { delaysNs = [] },
      enable() { enabled = true; return true },
      disable() { enabled = false; return true }
    },
    eventLoopUtilization(current?: EventLoopUtilization, previous?: EventLoopUtilization) {
      if (current && previous) {
        const a = current.active - previous.active
        const i = current.idle - previous.idle
        return { active: a, idle: i, utilization: a / (a + i) }
      }
      return { active, idle, utilization: active / (active + idle) }
    },
    now: () => active + idle
  }
  return {
    sources,
    get enabled() { return enabled },
    /** Adds delay samples, ms. */
    delay(...ms: number[]) { delaysNs.push(...ms.map((m) => m * 1e6)) },
    spend(activeMs: number, idleMs: number) { active += activeMs; idle += idleMs },
    /** One 500 ms interval: `delays` sampled, `busyMs` of it spent running code. */
    interval(busyMs: number, ...delays: number[]) {
      delaysNs = delays.map((ms) => ms * 1e6)
      active += busyMs
      idle += 500 - busyMs
    }
  }
}
