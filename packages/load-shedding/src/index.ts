import { loadShedding } from './plugin.js'

export { loadShedding, spillwayLoadShedding, SHED_CHANNEL, UPDATE_CHANNEL, type LoadSheddingHandle, type ShedEvent } from './plugin.js'
export { LoadSheddingOptionsError } from './errors.js'
export type { LoadSheddingOptions } from './options.js'
export type { LimitAlgorithm } from './limit-algorithm.js'
export { AimdLimit, type AimdLimitOptions } from './aimd-limit.js'
export { Gradient2Limit, type Gradient2LimitOptions } from './gradient2-limit.js'
export { ConcurrencyLimiter } from './concurrency-limiter.js'
export { AdmissionLevel, type AdmissionLevelOptions } from './admission-level.js'
export { LoadShedder, type LoadShedderOptions, type LoadSheddingMode, type LoadSheddingState, type LoadSignal, type RunQueueReading } from './load-shedder.js'
export { cohortOf, cohortEpoch } from './cohort.js'
export { createPriorityResolver, headerOrDefaultRank } from './priority.js'
export { SHED_REASONS, ADMIT, QUEUED, SHED_DEADLINE, type ShedReason } from './shed-reason.js'
export { ShedGate, type ShedGateOptions, type QueuedRequestHandlers } from './shed-gate.js'
export {
  normalizeOptions as normalizeLoadSheddingOptions,
  checkRoutePriority,
  type NormalizedOptions as NormalizedLoadSheddingOptions
} from './options.js'
export default loadShedding
export { RunQueue, type RunQueueOptions } from './run-queue.js'
