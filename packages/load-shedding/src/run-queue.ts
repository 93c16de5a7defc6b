import type { Clock } from '@spillway/latency-window/core'

/** Weight of each slice in the smoothed time the backlog takes to drain by one request (about the last 10 slices). */
const DRAIN_WEIGHT = 0.1

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

/**
 * One rank's waiting requests in arrival order: an array read from a moving head (the oldest) or
 * from its end (the newest), compacted when half spent.
 */
class Waiting<T> {
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

  /** The newest. */
  pop(): T {
    const item = this.items.pop() as T
    this.startedAt.pop()
    if (this.head === this.items.length) this.#empty()
    return item
  }

  /** The oldest. */
  shift(): T {
    const item = this.items[this.head] as T
    this.items[this.head] = undefined as T
    this.head++
    if (this.head === this.items.length) {
      this.#empty()
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.startedAt = this.startedAt.slice(this.head)
      this.head = 0
    }
    return item
  }

  #empty(): void {
    this.items.length = 0
    this.startedAt.length = 0
    this.head = 0
  }
}

/**
 * Moves the CPU-bound queue from the kernel into the process, where it can be ordered and seen.
 *
 * A Node server runs every request it reads in one poll phase back to back: with 2 ms handlers and
 * 40 readable sockets, the loop is gone for 80 ms, every new request waits unread in its socket
 * meanwhile, and nothing can put a `high` request ahead of a `low` one — the kernel's queue is
 * FIFO and invisible. So once the current loop turn has run `turnBudgetMs` of work, or requests
 * are already waiting, an admitted request is not run but queued here, one per priority, and
 * a `setImmediate` runs the queue after the poll phase, most important first, for at most
 * `turnBudgetMs` per turn. Between two such slices the loop polls the sockets again, so a new
 * request is read (and its wait starts being measured) within about one budget of arriving.
 *
 * A waiting request whose wait exceeds its rank's `maxWaitMs` is refused — CoDel's sojourn time
 * (RFC 8289) per priority: `low` waits least, so under sustained overload `low` is refused first,
 * then `normal`, while the CPU never idles as long as anything waits (the queue is the buffer that
 * keeps goodput at capacity while the threshold moves). As in Facebook's and Google's RPC servers,
 * a request is dropped at the point where it would no longer be useful, not on a guess at arrival.
 *
 * Within a rank the queue is served oldest first, unless more requests wait than can be run
 * within the rank's `maxWaitMs` (their number times the time the backlog takes to drain by one,
 * measured from slice to slice): then newest first — Facebook's adaptive LIFO, paired with that expiry ("Fail at Scale", 2015). After a stall
 * of the loop (a garbage collection), the requests that waited through it are read at once; served
 * oldest first, they would make every request arriving after them wait behind them and expire
 * too, long after the stall. Newest first, the late ones expire and the fresh ones are served as
 * if nothing had happened; under a sustained overload, what is served is what is still fresh. Not
 * newest first at the first sign of queueing: a request that falls behind then waits until it
 * expires, where oldest first would have served it in time.
 */
export class RunQueue<T> {
  readonly turnBudgetMs: number
  readonly maxLength: number
  readonly maxWaitMs: readonly number[]
  readonly #now: Clock
  readonly #run: (item: T, rank: number) => void
  readonly #expire: (item: T, rank: number) => void
  readonly #waiting: Waiting<T>[]
  #length = 0
  #scheduled = false
  #expired = 0
  #dispatched = 0
  #peakLength = 0
  /** How long the backlog takes to drain by one request, smoothed; 0 until a backlog was seen. */
  #drainMs = 0
  #previousSliceStart = 0
  #previousRuns = 0
  readonly #drain = (): void => { this.#runSlice() }

  constructor(options: RunQueueOptions<T>) {
    this.#now = options.now
    this.turnBudgetMs = options.turnBudgetMs
    this.maxLength = options.maxLength
    this.maxWaitMs = options.maxWaitMs
    this.#run = options.run
    this.#expire = options.expire
    this.#waiting = Array.from({ length: options.ranks }, () => new Waiting<T>())
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
    this.#waiting[rank]!.push(item, at)
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
    for (let rank = 0; rank < this.#waiting.length; rank++) {
      const waiting = this.#waiting[rank]!
      while (waiting.length > 0) {
        this.#length--
        this.#expire(waiting.shift(), rank)
      }
    }
  }

  #runSlice(): void {
    this.#scheduled = false
    const sliceStart = this.#now()
    // From one slice to the next while a backlog lasts: what a run really costs, the responses
    // written after the slice and the arrivals read between slices included.
    if (this.#previousRuns > 0) {
      const perRunMs = (sliceStart - this.#previousSliceStart) / this.#previousRuns
      this.#drainMs = this.#drainMs === 0 ? perRunMs : this.#drainMs + DRAIN_WEIGHT * (perRunMs - this.#drainMs)
    }
    let runs = 0
    let now = sliceStart
    while (this.#length > 0) {
      this.#expireOld(now)
      const rank = this.#firstWaiting()
      if (rank < 0) break
      const waiting = this.#waiting[rank]!
      // More waiting than can be run within the rank's wait: oldest first, the last of them would
      // expire anyway, and every request arriving behind them too. Newest first, those that can
      // still be served in time are, and those already late expire.
      const standing = waiting.length * this.#drainMs > (this.maxWaitMs[rank] ?? Number.POSITIVE_INFINITY)
      this.#length--
      this.#dispatched++
      runs++
      this.#run(standing ? waiting.pop() : waiting.shift(), rank)
      now = this.#now()
      if (now - sliceStart >= this.turnBudgetMs) break
    }
    if (this.#length > 0) {
      this.#previousSliceStart = sliceStart
      this.#previousRuns = runs
      this.#scheduled = true
      setImmediate(this.#drain)
    } else {
      // The backlog is gone: the time until the next one says nothing about a run's cost.
      this.#previousRuns = 0
    }
  }

  #firstWaiting(): number {
    for (let rank = 0; rank < this.#waiting.length; rank++) if (this.#waiting[rank]!.length > 0) return rank
    return -1
  }

  #expireOld(now: number): void {
    for (let rank = 0; rank < this.#waiting.length; rank++) {
      const waiting = this.#waiting[rank]!
      const maxWait = this.maxWaitMs[rank] ?? Number.POSITIVE_INFINITY
      while (waiting.length > 0 && now - waiting.oldestStartedAt() > maxWait) {
        this.#length--
        this.#expired++
        this.#expire(waiting.shift(), rank)
      }
    }
  }
}
