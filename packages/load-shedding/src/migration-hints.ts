/**
 * Option names of @fastify/under-pressure that users bring along when they migrate, each with what
 * to write here instead, or that there is no equivalent: a shedder that silently ignored
 * `maxEventLoopDelay` would run on its defaults while the user believes it tuned.
 */
const UNDER_PRESSURE = '@fastify/under-pressure'

const memory = (name: string, reading: string): { from: string, instead: string } => ({
  from: UNDER_PRESSURE,
  instead: `there is no memory limit of its own; a user signal sheds while its ratio is >= 1: signals: { ${name}: () => ${reading} / limitBytes }`
})

export const MIGRATION_HINTS = {
  maxEventLoopDelay: {
    from: UNDER_PRESSURE,
    instead: 'targetDelayMs (default 25) is the median event-loop delay of an interval that counts as overload (with queue: false; the run queue, on by default, judges the time requests wait, maxQueueMs); requests are then shed by priority, not all refused'
  },
  maxEventLoopUtilization: {
    from: UNDER_PRESSURE,
    instead: 'maxUtilization (default 0.95) is the event-loop utilization that counts as overload whatever the delay'
  },
  maxHeapUsedBytes: memory('heap', 'process.memoryUsage().heapUsed'),
  maxRssBytes: memory('rss', 'process.memoryUsage.rss()'),
  healthCheck: {
    from: UNDER_PRESSURE,
    instead: 'signals: { name: () => ratio } adds your own overload signal (>= 1 is overloaded), read at every control step'
  },
  pressureHandler: {
    from: UNDER_PRESSURE,
    instead: 'there is no equivalent: a refusal is a 503 (statusCode: 429 for a 429) with problem details and Retry-After; the diagnostics channel spillway:load-shedding:shed reports each one'
  },
  exposeStatusRoute: { from: UNDER_PRESSURE, instead: 'statusRoute: \'/path\' answers GET with the shedder\'s state (default false)' },
  sampleInterval: { from: UNDER_PRESSURE, instead: 'intervalMs (default 100) is how often the signals are read' },
  retryAfter: { from: UNDER_PRESSURE, instead: 'retryAfterMs: { min, max } is the range of the jittered Retry-After, ms' }
} as const
