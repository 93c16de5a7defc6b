/**
 * The framework-free parts, as the subpath `@spillway/load-shedding/core`: what another framework's
 * glue (the Express middleware of `@spillway/express`) needs, without the Fastify plugin and its
 * `fastify` declaration merging.
 */
export { ShedGate, type ShedGateOptions, type QueuedRequestHandlers } from './shed-gate.js'
export { LoadShedder, type LoadShedderOptions, type LoadSheddingMode, type LoadSheddingState, type LoadSignal, type RunQueueReading } from './load-shedder.js'
export { normalizeOptions, type LoadSheddingOptions, type NormalizedOptions } from './options.js'
export { createPriorityResolver, headerOrDefaultRank } from './priority.js'
export { LoadSheddingOptionsError } from './errors.js'
export { SHED_REASONS, ADMIT, QUEUED, SHED_DEADLINE, type ShedReason } from './shed-reason.js'
export { SHED_CHANNEL, UPDATE_CHANNEL, publishShed } from './channels.js'
export type { LimitAlgorithm } from './limit-algorithm.js'
export { RunQueue, type RunQueueOptions } from './run-queue.js'
export { urlPath } from './front-routes.js'
