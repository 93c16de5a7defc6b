/**
 * Option names of @fastify/under-pressure that users bring along when they migrate, each with what
 * to write here instead, or that there is no equivalent. Degradation answers pressure by turning
 * features off level by level, not by refusing requests, so most of them map onto a threshold.
 */
const UNDER_PRESSURE = '@fastify/under-pressure'

const memory = {
  from: UNDER_PRESSURE,
  instead: 'there is no memory signal here; with @spillway/load-shedding registered, its signals option (heap used / limit, for example) raises the pressure that thresholds.pressure judges'
}

export const MIGRATION_HINTS = {
  maxEventLoopDelay: {
    from: UNDER_PRESSURE,
    instead: 'thresholds.eventLoopDelayMs is one event-loop delay per level, ms (default [100, 200, 500])'
  },
  maxEventLoopUtilization: {
    from: UNDER_PRESSURE,
    instead: 'thresholds.utilization is one event-loop utilization per level, in (0, 1] (default false: not judged)'
  },
  maxHeapUsedBytes: memory,
  maxRssBytes: memory,
  pressureHandler: {
    from: UNDER_PRESSURE,
    instead: 'there is no equivalent: each feature declares its fallback (features: [{ name, offAtLevel, fallback }]), and onEvent() of the degradation state reports level changes'
  },
  exposeStatusRoute: {
    from: UNDER_PRESSURE,
    instead: 'statusRoute: \'/path\' answers GET with the level, features and overrides (default false)'
  },
  sampleInterval: { from: UNDER_PRESSURE, instead: 'evaluateIntervalMs (default 500) is how often the level is re-evaluated, eventLoop.intervalMs how often the event loop is sampled' }
} as const
