/**
 * How far into the current event-loop turn we are, as a lower bound on how long a request waited
 * unread in its socket.
 *
 * When the CPU is saturated the queue is not in the process but in the kernel: every socket that
 * became readable while the loop was busy is read in the next poll phase, one after the other.
 * A request handled 60 ms into that turn was already waiting when the turn began, so it has waited
 * at least 60 ms — and the next turn will be longer still, since requests keep arriving while
 * this one runs. This is CoDel's sojourn time (RFC 8289), measured with no timestamp from the
 * client: the first request of a turn opens it, a `setImmediate` (which runs right after the poll
 * phase) closes it. One immediate per turn, nothing per request.
 */
export class LoopTurn {
  #open = false
  #startedAt = 0
  readonly #close = (): void => { this.#open = false }

  /** Milliseconds since the current turn's first request, `at` being this request's start on the same clock. */
  elapsed(at: number): number {
    if (!this.#open) {
      this.#open = true
      this.#startedAt = at
      setImmediate(this.#close)
      return 0
    }
    return at - this.#startedAt
  }
}
