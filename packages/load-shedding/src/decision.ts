/**
 * What the shedder decides for a request, as named values: admit it, queue it (it waits its turn
 * in the run queue), or refuse it with a reason. Each is one frozen object made at load time, so a
 * decision allocates nothing and compares by identity on the hot path; every value has the same
 * shape, so the call sites that read them stay monomorphic.
 */
export const SHED_REASONS = ['threshold', 'queue', 'limit', 'backstop', 'deadline'] as const
export type ShedReason = (typeof SHED_REASONS)[number]

export interface Admit { readonly outcome: 'admit', readonly reason: undefined, readonly index: -1 }
export interface Queue { readonly outcome: 'queue', readonly reason: undefined, readonly index: -1 }
export interface Refusal {
  readonly outcome: 'refuse'
  readonly reason: ShedReason
  /** The reason's position in `SHED_REASONS`: where it is counted. */
  readonly index: number
}
export type Decision = Admit | Queue | Refusal

export const ADMIT: Admit = Object.freeze({ outcome: 'admit', reason: undefined, index: -1 })
/** Admitted past the threshold, but it must wait in the run queue: the controller runs or refuses it later. */
export const QUEUED: Queue = Object.freeze({ outcome: 'queue', reason: undefined, index: -1 })

const refusal = (reason: ShedReason): Refusal => Object.freeze({ outcome: 'refuse', reason, index: SHED_REASONS.indexOf(reason) })

/** The priority threshold (pressure from any signal) excludes this priority and cohort. */
export const SHED_THRESHOLD = refusal('threshold')
/** The request waited longer than its priority allows: unread in its socket, or in the run queue. */
export const SHED_QUEUE = refusal('queue')
/** The adaptive concurrency limit has no room left for this priority. */
export const SHED_LIMIT = refusal('limit')
/** Even `critical` work exceeds the hard ceiling. */
export const SHED_BACKSTOP = refusal('backstop')
/** The client's deadline passed before the request was read. */
export const SHED_DEADLINE = refusal('deadline')

/** Every refusal, in `SHED_REASONS` order. */
export const REFUSALS: readonly Refusal[] = Object.freeze([SHED_THRESHOLD, SHED_QUEUE, SHED_LIMIT, SHED_BACKSTOP, SHED_DEADLINE])
