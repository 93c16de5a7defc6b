/**
 * Why a request was refused. Decisions are small integers on the hot path (no string compare, no
 * allocation) and named only when counted or reported.
 */
export const SHED_REASONS = ['threshold', 'queue', 'limit', 'backstop', 'deadline'] as const
export type ShedReason = (typeof SHED_REASONS)[number]

export const ADMIT = -1
/** Admitted, but waiting in the run queue: the gate runs or refuses it later. */
export const QUEUED = -2
/** The priority threshold (pressure from any signal) excludes this priority and cohort. */
export const SHED_THRESHOLD = 0
/** The request sat in the socket longer than its priority allows (read late in a long loop turn). */
export const SHED_QUEUE = 1
/** The adaptive concurrency limit has no room left for this priority. */
export const SHED_LIMIT = 2
/** Even `critical` work exceeds the hard ceiling. */
export const SHED_BACKSTOP = 3
/** The client's deadline passed before the request was read. */
export const SHED_DEADLINE = 4
