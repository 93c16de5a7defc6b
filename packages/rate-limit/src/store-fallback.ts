/**
 * What happens when the shared store is down, slow or restarting: never a 5xx. A decision waits at
 * most `storeTimeoutMs`; on an error or a timeout the plugin marks the store degraded (logged once)
 * and decides without it — from an in-process bucket sized for this instance's share of the fleet
 * (`'local'`), by letting everything through (`'open'`) or by refusing (`'closed'`). While degraded,
 * one request per `probeIntervalMs` tries the store again; the first success returns to it (logged
 * once). Requests in between never touch the store, so a dead Redis costs no timeouts per request.
 *
 * A call that timed out may still reach Redis later and take its tokens: the shared bucket then
 * errs on the strict side, never the lenient one.
 */
import { monotonicNow, type Clock } from '@spillway/latency-window/core'
import { MemoryStore } from './memory-store.js'
import { publish } from './events.js'
import type { RateLimitStats } from './stats.js'
import { newDecision, type BucketPolicy, type BucketStore, type Decision } from './policy.js'

export const STORE_ERROR_MODES = ['local', 'open', 'closed'] as const
export type StoreErrorMode = (typeof STORE_ERROR_MODES)[number]

export interface TransitionLogger {
  warn(object: object, message: string): void
  info(object: object, message: string): void
}

/**
 * Logs a transition. A logger that throws (a user's, in Express) must cost neither the decision
 * under way nor, off a request's stack, the process: the line is lost instead.
 */
export function logTransition(log: TransitionLogger, level: 'warn' | 'info', object: object, message: string): void {
  try {
    log[level](object, message)
  } catch {}
}

export interface StoreFallbackOptions {
  store: BucketStore
  onStoreError: StoreErrorMode
  storeTimeoutMs: number
  probeIntervalMs: number
  /** Instances sharing the store: the local bucket gets 1/instances of each policy. */
  instances: number
  maxKeys: number
  stats: RateLimitStats
  log: TransitionLogger
  now?: Clock
}

export class StoreFallback implements BucketStore {
  readonly local: MemoryStore
  private readonly store: BucketStore
  private readonly options: StoreFallbackOptions
  private readonly now: Clock
  private degradedSinceMs = 0
  private nextProbeAtMs = 0
  private probing = false

  constructor(options: StoreFallbackOptions) {
    this.options = options
    this.store = options.store
    this.now = options.now ?? monotonicNow
    this.local = new MemoryStore({ maxKeys: options.maxKeys, share: 1 / options.instances, now: this.now })
  }

  get degraded(): boolean {
    return this.options.stats.degraded
  }

  take(policies: readonly BucketPolicy[], key: string, cost: number, out: Decision): Decision | Promise<Decision> {
    if (this.degraded) {
      const nowMs = this.now()
      if (this.probing || nowMs < this.nextProbeAtMs) return this.withoutStore(policies, key, cost, out)
      this.probing = true
      this.nextProbeAtMs = nowMs + this.options.probeIntervalMs
    }
    return this.viaStore(policies, key, cost, out)
  }

  async close(): Promise<void> {
    await this.local.close()
    await this.store.close()
  }

  private viaStore(policies: readonly BucketPolicy[], key: string, cost: number, out: Decision): Promise<Decision> {
    const { stats, storeTimeoutMs } = this.options
    const startedMs = this.now()
    return new Promise<Decision>((resolve) => {
      let settled = false
      const expire = () => {
        if (settled) return
        settled = true
        stats.storeTimeouts++
        this.failed(new Error(`store answered in more than ${storeTimeoutMs} ms`))
        resolve(this.withoutStore(policies, key, cost, out))
      }
      // Timers run before the poll phase: under a burst the reply may already sit in the socket
      // unread. setImmediate runs after that poll, so only a reply that really is late times out.
      const timer = setTimeout(() => setImmediate(expire), storeTimeoutMs)
      timer.unref()
      let pending: Promise<Decision>
      try {
        // Its own result object: a reply arriving after the timeout must not rewrite the fallback's.
        pending = Promise.resolve(this.store.take(policies, key, cost, newDecision(policies.length)))
      } catch (error) {
        pending = Promise.reject(error)
      }
      pending.then((decision) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        const endMs = this.now()
        stats.storeLatency.record(endMs - startedMs, endMs)
        this.succeeded(endMs)
        resolve(decision)
      }, (error: unknown) => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        this.failed(error)
        resolve(this.withoutStore(policies, key, cost, out))
      })
    })
  }

  private withoutStore(policies: readonly BucketPolicy[], key: string, cost: number, out: Decision): Decision {
    this.options.stats.fallbackDecisions++
    const mode = this.options.onStoreError
    if (mode === 'local') {
      this.local.take(policies, key, cost, out)
      out.source = 'local'
      return out
    }
    out.allowed = mode === 'open'
    out.retryAfterMs = out.allowed ? 0 : this.options.probeIntervalMs
    out.source = mode
    return out
  }

  private failed(error: unknown): void {
    const { stats } = this.options
    stats.storeErrors++
    this.probing = false
    if (stats.degraded) return
    stats.degraded = true
    stats.degradations++
    this.degradedSinceMs = this.now()
    this.nextProbeAtMs = this.degradedSinceMs + this.options.probeIntervalMs
    const message = error instanceof Error ? error.message : String(error)
    logTransition(this.options.log, 'warn', { err: message, onStoreError: this.options.onStoreError },
      'rate-limit store unavailable: deciding without it until it answers again')
    publish({ type: 'store-degraded', error: message })
  }

  private succeeded(nowMs: number): void {
    const { stats } = this.options
    this.probing = false
    if (!stats.degraded) return
    stats.degraded = false
    stats.recoveries++
    const degradedForMs = nowMs - this.degradedSinceMs
    logTransition(this.options.log, 'info', { degradedForMs: Math.round(degradedForMs) }, 'rate-limit store answers again: back to it')
    publish({ type: 'store-recovered', degradedForMs })
  }
}
