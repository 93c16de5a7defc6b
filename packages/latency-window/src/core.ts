/**
 * The framework-free parts the other Spillway packages build on, as the subpath
 * `@spillway/latency-window/core`: option checks, the refusal every package sends, and the shared
 * meter's per-request timing. Nothing here imports a framework.
 */
export {
  SpillwayOptionsError,
  checkNumber,
  checkFunction,
  checkOneOf,
  checkBoolean,
  checkOptionsObject,
  checkKnownKeys,
  optionMessage,
  describeValue,
  type NumberRule,
  type OptionsErrorFactory
} from './option-checks.js'
export { PROBLEM_CONTENT_TYPE, problemDetails, retryAfterSeconds, sendRawProblem, type ProblemDetails } from './refusal.js'
export { RequestSlot } from './request-slot.js'
export {
  RefusalPacer, normalizeRefusalPacing, TICK_MS, type RefusalPacingOptions, type RefusalPacingSettings, type HeldRefusal, type PacerTimers
} from './refusal-pacer.js'
export { startTiming, timedSince, excludeFromLatency, markRefused, requestStartedAt, responseOf } from './request-timing.js'
export { PRIORITIES, PRIORITY_RANK, isPriority, type Priority } from './priority.js'
export { ServerMeter, sharedMeter, type ServerMeterOptions } from './server-meter.js'
export { monotonicNow, type Clock } from './clock.js'
export { RELATIVE_ERROR, MIN_VALUE_MS, MAX_VALUE_MS } from './log-buckets.js'
export { LatencyWindow, type LatencyWindowOptions, type LatencySnapshot } from './latency-window.js'
export { EventLoopSignals, type EventLoopSignalsOptions, type EventLoopReading, type EventLoopSources } from './event-loop-signals.js'
export { InFlight } from './in-flight.js'
export { markLongLived, timingState, type TimingState } from './request-timing.js'
export { InFlightRequests, type ListedRequest, type InFlightLatency } from './in-flight-requests.js'
export type { DetachListener } from './server-meter.js'
