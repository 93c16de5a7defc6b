/**
 * The framework-free parts, as the subpath `@spillway/load-shedding/core`: the request protocol
 * another framework's mount (the Express middleware of `@spillway/express`) calls, and the parts
 * it is built from. Nothing here imports a framework.
 */
export { SheddingProtocol, type SheddingMount, type SheddingHooks } from './request-protocol.js'
export { ShedController, type ShedControllerHooks, type QueuedRequestHandlers } from './shed-controller.js'
export { PriorityLimiter, type PriorityLimiterOptions } from './priority-limiter.js'
export { describeState, type LoadSheddingMode, type LoadSheddingState } from './shedding-state.js'
export { OverloadSignals, type OverloadSignalsOptions, type OverloadVerdict } from './overload-signals.js'
export type { OverloadDetector } from './overload-detector.js'
export { EventLoopDelayDetector, type LoopReading } from './delay-detector.js'
export { UtilizationDetector } from './utilization-detector.js'
export { RunQueueDetector } from './run-queue-detector.js'
export { LimitDetector } from './limit-detector.js'
export { QueueingDetector } from './queueing-detector.js'
export { UserSignalsDetector, type LoadSignal } from './user-signals-detector.js'
export { AdmissionLevel, type AdmissionLevelOptions } from './admission-level.js'
export { ConcurrencyLimiter } from './concurrency-limiter.js'
export { AimdLimit, type AimdLimitOptions } from './aimd-limit.js'
export { Gradient2Limit, type Gradient2LimitOptions } from './gradient2-limit.js'
export type { LimitAlgorithm } from './limit-algorithm.js'
export { RunQueue, type RunQueueOptions, type RunQueueReading } from './run-queue.js'
export { RefusalBodies } from './refusal-bodies.js'
export { normalizeOptions, checkRoutePriority, type SheddingOptions, type LoadSheddingConfig } from './options.js'
export { createPriorityResolver, headerOrDefaultRank, type PrioritySources } from './priority.js'
export { LoadSheddingOptionsError, failOption } from './errors.js'
export {
  SHED_REASONS, REFUSALS, ADMIT, QUEUED, SHED_THRESHOLD, SHED_QUEUE, SHED_LIMIT, SHED_BACKSTOP, SHED_DEADLINE,
  type Decision, type Admit, type Queue, type Refusal, type ShedReason
} from './decision.js'
export { SHED_CHANNEL, UPDATE_CHANNEL, publishShed } from './channels.js'
export { cohortOf, cohortEpoch } from './cohort.js'
export { LoopTurn } from './loop-turn.js'
export { FrontRoutes, urlPath, FRONT_BYPASS, FRONT_DEFAULT_PRIORITY } from './front-routes.js'
