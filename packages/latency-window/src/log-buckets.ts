/**
 * Logarithmic buckets with a bounded relative error, as in DDSketch (Masson, Rim & Lee, VLDB 2019):
 * bucket i holds [MIN·γ^i, MIN·γ^(i+1)) and answers with the value whose relative distance to
 * both edges is α, so every value in the bucket is answered within α of itself.
 */

/** Relative error of any reported value. Below the 1% we promise, to leave room for float rounding. */
export const RELATIVE_ERROR = 0.009
/** Smallest value kept apart: 1 µs. Smaller values are clamped to it. */
export const MIN_VALUE_MS = 0.001
/** Largest value kept apart: 100 s. Larger values are clamped to it. */
export const MAX_VALUE_MS = 100_000

const GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
const INV_LN_GAMMA = 1 / Math.log(GAMMA)
const INV_MIN = 1 / MIN_VALUE_MS

export const BUCKET_COUNT = Math.floor(Math.log(MAX_VALUE_MS * INV_MIN) * INV_LN_GAMMA) + 1

/** The value each bucket answers with, computed once for the whole process. */
export const BUCKET_VALUES: Float64Array = (() => {
  const values = new Float64Array(BUCKET_COUNT)
  const representative = (2 * GAMMA) / (GAMMA + 1)
  for (let i = 0; i < BUCKET_COUNT; i++) {
    values[i] = MIN_VALUE_MS * GAMMA ** i * representative
  }
  return values
})()

/** Bucket of a value already clamped to [MIN_VALUE_MS, MAX_VALUE_MS]. */
export function bucketOf(clampedMs: number): number {
  const i = Math.floor(Math.log(clampedMs * INV_MIN) * INV_LN_GAMMA)
  // Rounding in log() can push the top value one bucket past the end.
  return i < BUCKET_COUNT ? i : BUCKET_COUNT - 1
}
