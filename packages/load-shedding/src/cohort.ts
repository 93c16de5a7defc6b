/**
 * Finer levels within a priority, so that shedding grows smoothly (one cohort at a time) and the
 * same users are shed consistently instead of a coin flip per request — the "user priority" of
 * WeChat's DAGOR (Zhou et al., "Overload Control for Scaling WeChat Microservices", SoCC 2018):
 * a hash of the user id, re-salted periodically so that no user is always the first one shed.
 */

/**
 * FNV-1a (32-bit) of `key`, salted with `epoch`, reduced to `[0, cohorts)`. Allocates nothing:
 * the salt is folded into the offset basis rather than concatenated to the key.
 */
export function cohortOf(key: string, epoch: number, cohorts: number): number {
  let hash = (2166136261 ^ Math.imul(epoch | 0, 0x9e3779b1)) >>> 0
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i)
    hash = Math.imul(hash, 16777619)
  }
  // A final avalanche so that keys differing only in their last character spread across cohorts.
  hash ^= hash >>> 15
  hash = Math.imul(hash, 0x2c1b3c6d)
  hash ^= hash >>> 12
  return (hash >>> 0) % cohorts
}

/** The rotation epoch at `nowMs`: cohorts are re-drawn every `rotateMs`. */
export function cohortEpoch(nowMs: number, rotateMs: number): number {
  return Math.floor(nowMs / rotateMs)
}
