/**
 * The requests a meter counts in flight, oldest first, as an intrusive doubly linked list: the
 * links live on each request's own timing object, so joining and leaving the list allocate
 * nothing and cost a few stores, and the oldest request is the head. A sweep walks it to notice
 * responses that turned into streams; the degradation controller reads the age of its oldest
 * requests, where a hung dependency shows before any slow request has completed.
 */

/** What the list needs of a request's timing. */
export interface ListedRequest {
  previous: ListedRequest | undefined
  next: ListedRequest | undefined
  /** When timing began, on the meter's clock (defined while it is listed). */
  readonly startedAt: number | undefined
  /** The meter's count of recorded latencies when this request started. */
  readonly recordedBefore: number
  /**
   * True when its age says nothing about how fast the server answers: a request still receiving
   * its body (a slow upload), or one refused in microseconds whose answer is held back.
   */
  readonly ageless: boolean
}

/** The in-flight requests read as latency samples at one quantile: see `InFlightRequests.latencyAt`. */
export interface InFlightLatency {
  /** The age at the quantile, ms; 0 when fewer in-flight requests than its rank. */
  ageMs: number
  /** Samples the quantile was taken over: latencies recorded since the oldest request started, plus the requests in flight. */
  samples: number
}

const NONE: Readonly<InFlightLatency> = Object.freeze({ ageMs: 0, samples: 0 })

export class InFlightRequests<T extends ListedRequest = ListedRequest> {
  #head: T | undefined
  #tail: T | undefined
  #length = 0

  /** The request that started first, of those still listed. */
  get oldest(): T | undefined {
    return this.#head
  }

  get length(): number {
    return this.#length
  }

  /** Appends a request that starts now: requests start in clock order, so the list stays ordered by start. */
  push(request: T): void {
    request.previous = this.#tail
    request.next = undefined
    if (this.#tail === undefined) this.#head = request
    else this.#tail.next = request
    this.#tail = request
    this.#length++
  }

  /** Unlinks a listed request in O(1). The caller knows it is listed (removing twice would corrupt the count). */
  remove(request: T): void {
    const { previous, next } = request
    if (previous === undefined) this.#head = next as T | undefined
    else previous.next = next
    if (next === undefined) this.#tail = previous as T | undefined
    else next.previous = previous
    request.previous = undefined
    request.next = undefined
    this.#length--
  }

  /** The request listed after `request` (for a walk that may remove the current one: read it first). */
  after(request: T): T | undefined {
    return request.next as T | undefined
  }

  /**
   * The requests in flight read as latency samples at `quantile`. A request in flight for `a` ms
   * will have taken at least `a`; the latencies recorded since the oldest of them started are
   * counted as faster than it (most are, and counting them so can only delay an alarm, never raise
   * a false one). Among those samples, the one at the nearest rank r = ⌈quantile · samples⌉ (as the
   * latency window ranks them) is, when it is in flight at all, the k-th oldest request in flight,
   * k = samples − r + 1: its age is the answer. Fewer than k requests in flight: 0, the in-flight
   * requests say nothing above what the latency window says.
   *
   * So one request stuck among many fast ones moves nothing, while a dependency that hangs every
   * request shows within the age of its first victims, before any of them has completed and
   * however many fast latencies the window holds from before. Ageless requests are left out.
   * `recorded` is the meter's count of recorded latencies, `now` its clock.
   */
  latencyAt(quantile: number, now: number, recorded: number): InFlightLatency {
    let oldest: T | undefined
    let counted = 0
    for (let request = this.#head; request !== undefined; request = request.next as T | undefined) {
      if (request.ageless) continue
      oldest ??= request
      counted++
    }
    if (oldest === undefined) return NONE
    const samples = recorded - oldest.recordedBefore + counted
    const rank = samples - Math.max(1, Math.ceil(quantile * samples)) + 1
    if (rank > counted) return { ageMs: 0, samples }
    let seen = 0
    for (let request: T | undefined = oldest; request !== undefined; request = request.next as T | undefined) {
      if (request.ageless || ++seen < rank) continue
      return { ageMs: Math.max(0, now - (request.startedAt ?? now)), samples }
    }
    return { ageMs: 0, samples }
  }
}
