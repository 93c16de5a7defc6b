/**
 * Token buckets in process memory: exact, synchronous (no Promise is created for a decision) and
 * bounded. Each policy keeps at most `maxKeys` buckets; when a new key arrives at the cap, the
 * full buckets are forgotten first (a full bucket is what an unknown key gets anyway, so nothing is
 * lost), then the oldest until a tenth of the cap is free. Freeing a tenth at a time keeps the
 * sweep amortized O(1) per new key even under a flood of spoofed keys, where no bucket is full.
 */
import { monotonicNow, type Clock } from '@spillway/latency-window/core'
import { TokenBucket } from './token-bucket.js'
import type { BucketPolicy, BucketStore, Decision } from './policy.js'

export interface MemoryStoreOptions {
  /** Most buckets kept per policy. */
  maxKeys?: number
  /** Scales every policy's capacity and refill: this instance's share when it stands in for a shared store. */
  share?: number
  now?: Clock
}

export class MemoryStore implements BucketStore {
  readonly maxKeys: number
  readonly share: number
  private readonly now: Clock
  private readonly tables: Array<Map<string, TokenBucket> | undefined> = []
  /** Reused across calls: the store is synchronous, so one call never overlaps another. */
  private readonly scratch: TokenBucket[] = []
  private evictedCount = 0

  constructor(options: MemoryStoreOptions = {}) {
    this.maxKeys = options.maxKeys ?? 10_000
    this.share = options.share ?? 1
    this.now = options.now ?? monotonicNow
  }

  take(policies: readonly BucketPolicy[], key: string, cost: number, out: Decision): Decision {
    const nowMs = this.now()
    if (policies.length === 1) {
      // Most routes have one policy: one refill, no all-or-none bookkeeping.
      const result = out.results[0]
      if (result !== undefined) {
        this.bucketFor(policies[0] as BucketPolicy, key, nowMs).take(cost, nowMs, result)
        out.allowed = result.allowed
        out.retryAfterMs = result.retryAfterMs
        out.source = 'store'
        return out
      }
    }
    const buckets = this.scratch
    let allowed = true
    for (let i = 0; i < policies.length; i++) {
      const bucket = this.bucketFor(policies[i] as BucketPolicy, key, nowMs)
      buckets[i] = bucket
      if (!bucket.canTake(cost, nowMs)) allowed = false
    }
    let retryAfterMs = 0
    for (let i = 0; i < policies.length; i++) {
      const bucket = buckets[i] as TokenBucket
      const result = out.results[i]
      if (result === undefined) continue
      const hadTokens = bucket.canTake(cost, nowMs)
      if (allowed) bucket.commit(cost)
      bucket.describe(cost, hadTokens, result)
      if (result.retryAfterMs > retryAfterMs) retryAfterMs = result.retryAfterMs
    }
    out.allowed = allowed
    out.retryAfterMs = allowed ? 0 : retryAfterMs
    out.source = 'store'
    return out
  }

  /** Buckets tracked for a policy (for tests and stats). */
  size(policy: BucketPolicy): number {
    return this.tables[policy.index]?.size ?? 0
  }

  /** Buckets forgotten at the cap while not yet full (each let one key start over with a full bucket). */
  get evicted(): number {
    return this.evictedCount
  }

  async close(): Promise<void> {
    this.tables.length = 0
  }

  private bucketFor(policy: BucketPolicy, key: string, nowMs: number): TokenBucket {
    let table = this.tables[policy.index]
    if (table === undefined) {
      table = new Map()
      this.tables[policy.index] = table
    }
    let bucket = table.get(key)
    if (bucket === undefined) {
      if (table.size >= this.maxKeys) this.makeRoom(table, nowMs)
      // At least one token, so that a tiny share still lets a request through now and then.
      bucket = new TokenBucket(Math.max(1, policy.capacity * this.share), policy.refillPerSecond * this.share, nowMs)
      table.set(key, bucket)
    }
    return bucket
  }

  private makeRoom(table: Map<string, TokenBucket>, nowMs: number): void {
    for (const [key, bucket] of table) {
      if (bucket.isFullAt(nowMs)) table.delete(key)
    }
    const target = this.maxKeys - Math.max(1, Math.floor(this.maxKeys / 10))
    if (table.size <= target) return
    // Map iterates in insertion order: the first keys are the oldest.
    for (const key of table.keys()) {
      if (table.size <= target) break
      table.delete(key)
      this.evictedCount++
    }
  }
}
