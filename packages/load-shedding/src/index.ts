import { loadShedding } from './plugin.js'

export { loadShedding, spillwayLoadShedding, SHED_CHANNEL, UPDATE_CHANNEL, type LoadSheddingHandle, type LoadSheddingOptions, type ShedEvent } from './plugin.js'
export { LoadSheddingOptionsError } from './errors.js'
export type { LimitAlgorithm } from './limit-algorithm.js'
export { AimdLimit, type AimdLimitOptions } from './aimd-limit.js'
export { Gradient2Limit, type Gradient2LimitOptions } from './gradient2-limit.js'
export type { LoadSheddingMode, LoadSheddingState } from './shedding-state.js'
export type { LoadSignal } from './user-signals-detector.js'
export type { ShedReason } from './decision.js'
export type { PriorityLimiter } from './priority-limiter.js'
export type { RunQueueReading } from './run-queue.js'
export default loadShedding
