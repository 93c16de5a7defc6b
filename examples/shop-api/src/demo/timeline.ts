import { quantile } from '@spillway/overload-bench/open-loop'
import { CLASSES, type RequestClass } from './scenario.js'

/** Outcomes of one class of requests in one time bucket. */
export interface ClassBucket {
  ok: number
  /** 503 from the load shedder. */
  shed: number
  /** 429 from the rate limiter. */
  limited: number
  timedOut: number
  /** Connection failures and other statuses (a 500 from a database pool timeout…). */
  errors: number
  latenciesMs: number[]
}

export type Bucket = Record<RequestClass, ClassBucket>

function emptyBucket(): Bucket {
  const bucket = {} as Bucket
  for (const name of CLASSES) bucket[name] = { ok: 0, shed: 0, limited: 0, timedOut: 0, errors: 0, latenciesMs: [] }
  return bucket
}

/** Per-second buckets of outcomes by request class, from a start time (`performance.now()` ms). */
export class Timeline {
  readonly startMs: number
  readonly bucketMs: number
  readonly buckets: Bucket[] = []

  constructor(startMs: number, bucketMs = 1000) {
    this.startMs = startMs
    this.bucketMs = bucketMs
  }

  /** Counts one outcome (status 0: connection failed; −1: abandoned by the client) at `atMs`. */
  record(requestClass: RequestClass, status: number, atMs: number, latencyMs: number): void {
    const index = Math.max(0, Math.floor((atMs - this.startMs) / this.bucketMs))
    while (this.buckets.length <= index) this.buckets.push(emptyBucket())
    const slot = this.buckets[index]![requestClass]
    if (status >= 200 && status < 300) {
      slot.ok++
      slot.latenciesMs.push(latencyMs)
    } else if (status === 503) slot.shed++
    else if (status === 429) slot.limited++
    else if (status === -1) slot.timedOut++
    else slot.errors++
  }

  bucket(index: number): Bucket {
    return this.buckets[index] ?? emptyBucket()
  }
}

/** Requests answered in a bucket, all outcomes. */
export function answered(slot: ClassBucket): number {
  return slot.ok + slot.shed + slot.limited + slot.timedOut + slot.errors
}

/** p99 latency of the successes in a bucket, ms; null with no success. */
export function p99Ms(slot: ClassBucket): number | null {
  return slot.latenciesMs.length === 0 ? null : quantile(slot.latenciesMs, 0.99)
}
