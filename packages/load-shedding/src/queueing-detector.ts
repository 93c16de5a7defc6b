import type { OverloadDetector } from './overload-detector.js'

/**
 * Queueing, per request: how long a request at least sat unread in its socket (how far into the
 * current loop turn it was read; see `LoopTurn`). Above its priority's `maxQueueMs` it is shed at
 * once, the guard that acts within one long turn, before any interval-based signal can; and any
 * such refusal in an interval counts as overload for the threshold. Severity 1.
 */
export class QueueingDetector implements OverloadDetector {
  overloaded = false
  severity = 0
  #refusals = 0

  /** The hot path: a request was shed for its wait. */
  refused(): void {
    this.#refusals++
  }

  sample(): void {
    this.overloaded = this.#refusals > 0
    this.severity = this.overloaded ? 1 : 0
    this.#refusals = 0
  }
}
