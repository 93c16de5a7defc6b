import type { Clock } from '@spillway/latency-window/core'

/** What the run queue reports to a control step (see `RunQueue.takeCounts`). */
export interface RunQueueReading {
  /** Requests refused in the interval for waiting past their priority's `maxQueueMs`. */
  expired: number
  /** Requests run from the queue in the interval. */
  dispatched: number
  /** Most requests waiting at once in the interval, and waiting now. */
  peakLength: number
  length: number
}

export interface RunQueueOptions<T> {
  now: Clock
  /** Number of priority ranks; rank 0 is served first. */
  ranks: number
  /** Longest a loop turn runs admitted work before the sockets are read again, ms. */
  turnBudgetMs: number
  /** Longest a request of each rank may wait, counted from when it started, ms. */
  maxWaitMs: readonly number[]
  /** Most requests waiting at once; a request that finds the queue full is refused. */
  maxLength: number
  /** Its turn came: run it. */
  run: (item: T, rank: number) => void
  /** It waited past its rank's `maxWaitMs`: refuse it. */
  expire: (item: T, rank: number) => void
}

/** One rank's waiting requests, oldest first: an array read from a moving head, compacted when half spent. */
class Fifo<T> {
  items: T[] = []
  startedAt: number[] = []
  head = 0

  get length(): number {
    return this.items.length - this.head
  }

  push(item: T, at: number): void {
    this.items.push(item)
    this.startedAt.push(at)
  }

  oldestStartedAt(): number {
    return this.startedAt[this.head] ?? Number.POSITIVE_INFINITY
  }

  shift(): T {
    const item = this.items[this.head] as T
    this.items[this.head] = undefined as T
    this.head++
    if (this.head === this.items.length) {
      this.items.length = 0
      this.startedAt.length = 0
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.startedAt = this.startedAt.slice(this.head)
      this.head = 0
    }
    return item
  }
}

/**
 * Moves the CPU-bound queue from the kernel into the process, where it can be ordered and seen.
 *
 * A Node server runs every request it reads in one poll phase back to back: with 2 ms handlers and
 * 40 readable sockets, the loop is gone for 80 ms, every new request waits unread in its socket
 * meanwhile, and nothing can put a `high` request ahead of a `low` one — the kernel's queue is
 * FIFO and invisible. So once the current loop turn has run `turnBudgetMs` of work, or requests
 * are already waiting, an admitted request is not run but queued here, one FIFO per priority, and
 * a `setImmediate` runs the queue after the poll phase, most important first, for at most
 * `turnBudgetMs` per turn. Between two such slices the loop polls the sockets again, so a new
 * request is read (and its wait starts being measured) within about one budget of arriving.
 *
 * A waiting request whose wait exceeds its rank's `maxWaitMs` is refused — CoDel's sojourn time
 * (RFC 8289) per priority: `low` waits least, so under sustained overload `low` is refused first,
 * then `normal`, while the CPU never idles as long as anything waits (the queue is the buffer that
 * keeps goodput at capacity while the threshold moves). As in Facebook's and Google's RPC servers,
 * a request is dropped at the point where it would no longer be useful, not on a guess at arrival.
 */
export class RunQueue<T> {
  readonly turnBudgetMs: number
  readonly maxLength: number
  readonly maxWaitMs: readonly number[]
  readonly #now: Clock
  readonly #run: (item: T, rank: number) => void
  readonly #expire: (item: T, rank: number) => void
  readonly #fifos: Fifo<T>[]
  #length = 0
  #scheduled = false
  #expired = 0
  #dispatched = 0
  #peakLength = 0
  readonly #drain = (): void => { this.#runSlice() }

  constructor(options: RunQueueOptions<T>) {
    this.#now = options.now
    this.turnBudgetMs = options.turnBudgetMs
    this.maxLength = options.maxLength
    this.maxWaitMs = options.maxWaitMs
    this.#run = options.run
    this.#expire = options.expire
    this.#fifos = Array.from({ length: options.ranks }, () => new Fifo<T>())
  }

  get length(): number {
    return this.#length
  }

  /** Whether a request admitted `turnElapsedMs` into the current loop turn must wait its turn here. */
  mustWait(turnElapsedMs: number): boolean {
    return this.#length > 0 || turnElapsedMs >= this.turnBudgetMs
  }

  /** Queues a request that started at `at`; false (nothing queued, counted as expired) when the queue is full. */
  push(rank: number, item: T, at: number): boolean {
    if (this.#length >= this.maxLength) {
      this.#expired++
      return false
    }
    this.#fifos[rank]!.push(item, at)
    if (++this.#length > this.#peakLength) this.#peakLength = this.#length
    if (!this.#scheduled) {
      this.#scheduled = true
      setImmediate(this.#drain)
    }
    return true
  }

  /** Requests refused for waiting too long, run from the queue, and the most waiting at once, since the last call. */
  takeCounts(): RunQueueReading {
    const counts = { expired: this.#expired, dispatched: this.#dispatched, peakLength: this.#peakLength, length: this.#length }
    this.#expired = 0
    this.#dispatched = 0
    this.#peakLength = this.#length
    return counts
  }

  /** Refuses everything waiting (the server is closing). */
  clear(): void {
    for (let rank = 0; rank < this.#fifos.length; rank++) {
      const fifo = this.#fifos[rank]!
      while (fifo.length > 0) {
        this.#length--
        this.#expire(fifo.shift(), rank)
      }
    }
  }

  #runSlice(): void {
    this.#scheduled = false
    const sliceStart = this.#now()
    let now = sliceStart
    while (this.#length > 0) {
      this.#expireOld(now)
      const rank = this.#firstWaiting()
      if (rank < 0) break
      this.#length--
      this.#dispatched++
      this.#run(this.#fifos[rank]!.shift(), rank)
      now = this.#now()
      if (now - sliceStart >= this.turnBudgetMs) break
    }
    if (this.#length > 0) {
      this.#scheduled = true
      setImmediate(this.#drain)
    }
  }

  #firstWaiting(): number {
    for (let rank = 0; rank < this.#fifos.length; rank++) if (this.#fifos[rank]!.length > 0) return rank
    return -1
  }

  #expireOld(now: number): void {
    for (let rank = 0; rank < this.#fifos.length; rank++) {
      const fifo = this.#fifos[rank]!
      const maxWait = this.maxWaitMs[rank] ?? Number.POSITIVE_INFINITY
      while (fifo.length > 0 && now - fifo.oldestStartedAt() > maxWait) {
        this.#length--
        this.#expired++
        this.#expire(fifo.shift(), rank)
      }
    }
  }
}
