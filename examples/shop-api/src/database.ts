/**
 * A simulated database: a bounded pool of connections, each query holding one for `queryMs`
 * (times `slowdown` during a slow-database episode). Requests wait in FIFO order for a free
 * connection, up to `acquireTimeoutMs`, as a real client library's pool makes them wait. This is
 * the second kind of overload: the event loop idles while requests queue here.
 */
export interface DatabaseOptions {
  /** Connections in the pool. */
  poolSize: number
  /** How long one query holds its connection when the database is healthy, ms. */
  queryMs: number
  /** Longest a query waits for a connection before failing, ms. */
  acquireTimeoutMs: number
}

export class PoolTimeoutError extends Error {
  readonly code = 'SHOP_DB_POOL_TIMEOUT'
  constructor(waitedMs: number) {
    super(`no database connection free after ${Math.round(waitedMs)} ms`)
  }
}

interface Waiter {
  grant: () => void
  timer: NodeJS.Timeout
}

export class SimulatedDatabase {
  readonly poolSize: number
  readonly queryMs: number
  readonly acquireTimeoutMs: number
  /** Query time multiplier: 1 healthy, > 1 during a slow-database episode. */
  slowdown = 1
  #free: number
  readonly #waiters: Waiter[] = []
  #queries = 0
  #timeouts = 0

  constructor(options: DatabaseOptions) {
    if (!Number.isInteger(options.poolSize) || options.poolSize < 1) throw new RangeError(`poolSize must be an integer ≥ 1, got ${options.poolSize}`)
    if (!(options.queryMs >= 0)) throw new RangeError(`queryMs must be ≥ 0, got ${options.queryMs}`)
    this.poolSize = options.poolSize
    this.queryMs = options.queryMs
    this.acquireTimeoutMs = options.acquireTimeoutMs
    this.#free = options.poolSize
  }

  get inUse(): number {
    return this.poolSize - this.#free
  }

  get waiting(): number {
    return this.#waiters.length
  }

  get queries(): number {
    return this.#queries
  }

  get timeouts(): number {
    return this.#timeouts
  }

  /** One query: waits for a connection, holds it for the (possibly slowed) query time, gives it back. */
  async query<T>(result: T): Promise<T> {
    await this.#acquire()
    try {
      await new Promise((resolve) => setTimeout(resolve, this.queryMs * this.slowdown))
      this.#queries++
      return result
    } finally {
      this.#release()
    }
  }

  #acquire(): Promise<void> {
    if (this.#free > 0) {
      this.#free--
      return Promise.resolve()
    }
    const queuedAt = performance.now()
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        grant: resolve,
        timer: setTimeout(() => {
          const index = this.#waiters.indexOf(waiter)
          if (index !== -1) this.#waiters.splice(index, 1)
          this.#timeouts++
          reject(new PoolTimeoutError(performance.now() - queuedAt))
        }, this.acquireTimeoutMs)
      }
      this.#waiters.push(waiter)
    })
  }

  #release(): void {
    const next = this.#waiters.shift()
    if (next === undefined) {
      this.#free++
      return
    }
    clearTimeout(next.timer)
    next.grant()
  }
}
