export { monotonicNow, type Clock } from './clock.js'
export { SpillwayOptionsError } from './option-checks.js'
export { RELATIVE_ERROR, MIN_VALUE_MS, MAX_VALUE_MS } from './log-buckets.js'
export { LatencyWindow, type LatencyWindowOptions, type LatencySnapshot } from './latency-window.js'
export {
  EventLoopSignals,
  type EventLoopSignalsOptions,
  type EventLoopReading,
  type EventLoopSources
} from './event-loop-signals.js'
export { InFlight } from './in-flight.js'
export { PRIORITIES, PRIORITY_RANK, isPriority, type Priority } from './priority.js'
export { ServerMeter, sharedMeter, type ServerMeterOptions } from './server-meter.js'
export { PROBLEM_CONTENT_TYPE, problemDetails, type ProblemDetails } from './refusal.js'
export { InFlightRequests, type ListedRequest, type InFlightLatency } from './in-flight-requests.js'
export type { DetachListener } from './server-meter.js'
