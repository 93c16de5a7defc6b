import { monotonicNow, type Clock } from './clock.js'
import { BUCKET_COUNT, BUCKET_VALUES, MAX_VALUE_MS, MIN_VALUE_MS, bucketOf } from './log-buckets.js'
import { checkFunction, checkKnownKeys, checkNumber, checkOptionsObject } from './option-checks.js'

export interface LatencyWindowOptions {
  /** Length of the window in ms. Default 10 000. */
  windowMs?: number
  /** Number of slices the window rotates through. Default 10. */
  slices?: number
  /** Monotonic clock in ms. Default `performance.now`. */
  now?: Clock
}

export interface LatencySnapshot {
  count: number
  ratePerSecond: number
  mean: number
  min: number
  max: number
  p50: number
  p90: number
  p99: number
  p999: number
}

const SNAPSHOT_QUANTILES = [0.5, 0.9, 0.99, 0.999] as const

// `satisfies`: an option added to the interface and not here (or the other way round) fails the build.
export const LATENCY_WINDOW_OPTIONS = Object.keys({ windowMs: true, slices: true, now: true } satisfies Record<keyof LatencyWindowOptions, true>)

export const DEFAULT_WINDOW_MS = 10_000
export const DEFAULT_SLICES = 10

/**
 * Latency over the last `windowMs`, as a ring of time slices each holding a log-bucketed
 * histogram, plus a running total of the live slices so that a quantile scans one histogram
 * rather than merging all of them.
 *
 * A time window rather than the last N samples: a count window keeps minutes-old samples when
 * traffic is low and covers only milliseconds when it is high. A sample stops counting between
 * `windowMs - windowMs / slices` and `windowMs` after it was recorded.
 */
export class LatencyWindow {
  readonly windowMs: number
  readonly slices: number
  readonly sliceMs: number

  readonly #now: Clock
  /** `slices` histograms laid end to end. */
  readonly #sliceBuckets: Uint32Array
  /** The sum of the live slices' histograms. */
  readonly #totalBuckets: Uint32Array
  readonly #sliceCount: Float64Array
  readonly #sliceSum: Float64Array
  readonly #sliceMin: Float64Array
  readonly #sliceMax: Float64Array
  readonly #startedAt: number
  #totalCount = 0
  #epoch: number
  #head = 0
  #invalidCount = 0
  #clampedCount = 0
  // Reused so that reading one quantile allocates nothing.
  readonly #oneQuantile = [0]
  readonly #oneResult = [0]

  constructor(input?: LatencyWindowOptions) {
    const options = checkOptionsObject<LatencyWindowOptions>('options', input)
    checkKnownKeys('', options, LATENCY_WINDOW_OPTIONS)
    this.windowMs = checkNumber('windowMs', options.windowMs ?? DEFAULT_WINDOW_MS, { min: 1 })
    this.slices = checkNumber('slices', options.slices ?? DEFAULT_SLICES, { min: 1, max: 120, integer: true })
    this.#now = checkFunction<Clock>('now', options.now ?? monotonicNow)
    this.sliceMs = this.windowMs / this.slices

    this.#sliceBuckets = new Uint32Array(this.slices * BUCKET_COUNT)
    this.#totalBuckets = new Uint32Array(BUCKET_COUNT)
    this.#sliceCount = new Float64Array(this.slices)
    this.#sliceSum = new Float64Array(this.slices)
    this.#sliceMin = new Float64Array(this.slices).fill(Infinity)
    this.#sliceMax = new Float64Array(this.slices).fill(-Infinity)
    this.#startedAt = this.#now()
    this.#epoch = Math.floor(this.#startedAt / this.sliceMs)
  }

  /**
   * Records one latency in ms. `at` is the reading of this window's clock when it ended, for
   * callers that have just read the clock to compute the latency; it saves a second read.
   * NaN, negatives and non-numbers are ignored and counted in `invalidCount`; values outside
   * [1 µs, 100 s] are clamped to that range and counted in `clampedCount`.
   */
  record(ms: number, at?: number): void {
    // `!(ms >= 0)` also rejects NaN; a non-number fails `typeof` before any coercion.
    if (typeof ms !== 'number' || !(ms >= 0)) {
      this.#invalidCount++
      return
    }
    let value = ms
    if (value < MIN_VALUE_MS) {
      value = MIN_VALUE_MS
      this.#clampedCount++
    } else if (value > MAX_VALUE_MS) {
      value = MAX_VALUE_MS
      this.#clampedCount++
    }
    this.#advance(at ?? this.#now())
    const slice = this.#head
    const bucket = bucketOf(value)
    this.#sliceBuckets[slice * BUCKET_COUNT + bucket]!++
    this.#totalBuckets[bucket]!++
    this.#totalCount++
    this.#sliceCount[slice]!++
    this.#sliceSum[slice]! += value
    if (value < this.#sliceMin[slice]!) this.#sliceMin[slice] = value
    if (value > this.#sliceMax[slice]!) this.#sliceMax[slice] = value
  }

  /** Samples in the live window. */
  get count(): number {
    this.#advance(this.#now())
    return this.#totalCount
  }

  /** Samples per second over the span the window covers (at least one slice). 0 when empty. */
  get ratePerSecond(): number {
    const now = this.#now()
    this.#advance(now)
    return this.#rate(now)
  }

  /** Mean of the live samples, 0 when empty. */
  get mean(): number {
    this.#advance(this.#now())
    return this.#mean()
  }

  /** Smallest live sample (exact, after clamping), 0 when empty. */
  get min(): number {
    this.#advance(this.#now())
    return this.#min()
  }

  /** Largest live sample (exact, after clamping), 0 when empty. */
  get max(): number {
    this.#advance(this.#now())
    return this.#max()
  }

  /** Samples ignored because they were NaN, negative or not numbers, since creation. */
  get invalidCount(): number {
    return this.#invalidCount
  }

  /** Samples clamped into [1 µs, 100 s], since creation. */
  get clampedCount(): number {
    return this.#clampedCount
  }

  /** Bytes held by this window's histograms and slice counters. */
  get byteLength(): number {
    return this.#sliceBuckets.byteLength + this.#totalBuckets.byteLength + this.#sliceCount.byteLength +
      this.#sliceSum.byteLength + this.#sliceMin.byteLength + this.#sliceMax.byteLength
  }

  /**
   * The nearest-rank q-quantile of the live samples (the value at rank ⌈q·count⌉), within 1% of
   * the exact value; 0 when the window is empty. q = 0 and q = 1 answer the exact min and max.
   */
  quantile(q: number): number {
    if (typeof q !== 'number' || !(q >= 0 && q <= 1)) {
      throw new RangeError(`quantile must be in [0, 1], got ${String(q)}`)
    }
    this.#advance(this.#now())
    if (this.#totalCount === 0) return 0
    if (q === 0) return this.#min()
    if (q === 1) return this.#max()
    this.#oneQuantile[0] = q
    this.#quantiles(this.#oneQuantile, this.#oneResult)
    return this.#oneResult[0]!
  }

  snapshot(): LatencySnapshot {
    const now = this.#now()
    this.#advance(now)
    const count = this.#totalCount
    if (count === 0) {
      return { count: 0, ratePerSecond: 0, mean: 0, min: 0, max: 0, p50: 0, p90: 0, p99: 0, p999: 0 }
    }
    const q = [0, 0, 0, 0]
    this.#quantiles(SNAPSHOT_QUANTILES, q)
    return {
      count,
      ratePerSecond: this.#rate(now),
      mean: this.#mean(),
      min: this.#min(),
      max: this.#max(),
      p50: q[0]!,
      p90: q[1]!,
      p99: q[2]!,
      p999: q[3]!
    }
  }

  /** Forgets every sample; the invalid and clamped counters are kept. */
  reset(): void {
    for (let s = 0; s < this.slices; s++) this.#clearSlice(s)
  }

  /** Rotates the ring up to `now`, emptying the slices that fell out of the window. */
  #advance(now: number): void {
    const epoch = Math.floor(now / this.sliceMs)
    if (epoch <= this.#epoch) return
    const steps = Math.min(epoch - this.#epoch, this.slices)
    for (let i = 0; i < steps; i++) {
      this.#head = this.#head + 1 === this.slices ? 0 : this.#head + 1
      this.#clearSlice(this.#head)
    }
    this.#epoch = epoch
  }

  #clearSlice(slice: number): void {
    const count = this.#sliceCount[slice]!
    if (count === 0) return
    // Only the buckets between the slice's min and max can be non-zero.
    const offset = slice * BUCKET_COUNT
    const last = bucketOf(this.#sliceMax[slice]!)
    for (let b = bucketOf(this.#sliceMin[slice]!); b <= last; b++) {
      const n = this.#sliceBuckets[offset + b]!
      if (n !== 0) {
        this.#totalBuckets[b]! -= n
        this.#sliceBuckets[offset + b] = 0
      }
    }
    this.#totalCount -= count
    this.#sliceCount[slice] = 0
    this.#sliceSum[slice] = 0
    this.#sliceMin[slice] = Infinity
    this.#sliceMax[slice] = -Infinity
  }

  /** Fills `out` with the quantiles `qs` (ascending, in (0, 1)) in one pass over the buckets. */
  #quantiles(qs: readonly number[], out: number[]): void {
    const count = this.#totalCount
    const min = this.#min()
    const max = this.#max()
    let next = 0
    let rank = Math.max(1, Math.ceil(qs[0]! * count))
    let seen = 0
    for (let b = bucketOf(min); b < BUCKET_COUNT && next < qs.length; b++) {
      seen += this.#totalBuckets[b]!
      while (seen >= rank && next < qs.length) {
        // The extreme buckets answer no further out than the samples actually went.
        const value = BUCKET_VALUES[b]!
        out[next] = value < min ? min : value > max ? max : value
        next++
        if (next < qs.length) rank = Math.max(1, Math.ceil(qs[next]! * count))
      }
    }
  }

  #rate(now: number): number {
    if (this.#totalCount === 0) return 0
    const covered = this.windowMs - this.sliceMs + (now - this.#epoch * this.sliceMs)
    const spanMs = Math.max(Math.min(covered, now - this.#startedAt), this.sliceMs)
    return (this.#totalCount * 1000) / spanMs
  }

  #mean(): number {
    if (this.#totalCount === 0) return 0
    let sum = 0
    for (let s = 0; s < this.slices; s++) sum += this.#sliceSum[s]!
    return sum / this.#totalCount
  }

  #min(): number {
    let min = Infinity
    for (let s = 0; s < this.slices; s++) if (this.#sliceMin[s]! < min) min = this.#sliceMin[s]!
    return min === Infinity ? 0 : min
  }

  #max(): number {
    let max = -Infinity
    for (let s = 0; s < this.slices; s++) if (this.#sliceMax[s]! > max) max = this.#sliceMax[s]!
    return max === -Infinity ? 0 : max
  }
}
