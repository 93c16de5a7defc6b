/**
 * Requests started and not yet finished. `peak` remembers the highest count since it was last
 * taken, because a sampler that reads `current` once per interval misses short bursts.
 */
export class InFlight {
  #current = 0
  #peak = 0

  get current(): number {
    return this.#current
  }

  acquire(): number {
    const current = ++this.#current
    if (current > this.#peak) this.#peak = current
    return current
  }

  release(): number {
    // A double release must not drive the count negative and hide real load afterwards.
    if (this.#current > 0) this.#current--
    return this.#current
  }

  /** The highest count since the previous call; starts the next period at the current count. */
  takePeak(): number {
    const peak = this.#peak
    this.#peak = this.#current
    return peak
  }
}
