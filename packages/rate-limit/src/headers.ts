/**
 * Response headers, after draft-ietf-httpapi-ratelimit-headers-11: both fields are Structured Field
 * Lists whose items are the policy name as an sf-string with parameters.
 *   RateLimit-Policy: "burst";q=20;w=1, "quota";q=1000;w=3600   (quota, window in seconds)
 *   RateLimit: "burst";r=19;t=1, "quota";r=999;t=4             (remaining, effective window)
 * For a token bucket `w` is the time to refill from empty and `t` the time until full again; on a
 * refusal, the refusing policies report `t` = Retry-After, because the draft asks that Retry-After
 * not point earlier than the end of the effective window. Legacy `X-RateLimit-*` describe the
 * policy with the fewest tokens left.
 */
import { retryAfterSeconds } from '@spillway/latency-window/core'
import type { Decision, Policy } from './policy.js'

export const RATE_LIMIT_HEADER_NAMES = ['RateLimit-Policy', 'RateLimit', 'Retry-After'] as const
export const LEGACY_HEADER_NAMES = ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset'] as const

/** An sf-string (RFC 8941 §3.3.3): printable ASCII, with `"` and `\\` escaped. Names are checked at registration. */
export function sfString(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`
}

/** Constant per route, so built once. */
export function policyHeader(policies: readonly Policy[]): string {
  return policies.map((policy) => `${sfString(policy.name)};q=${Math.floor(policy.capacity)};w=${policy.windowSeconds}`).join(', ')
}

/** Whole seconds, rounded up, never negative (an sf-integer). */
function seconds(ms: number): number {
  return ms > 0 ? Math.ceil(ms / 1000) : 0
}

export function rateLimitHeader(names: readonly string[], decision: Decision): string {
  let value = ''
  const results = decision.results
  for (let i = 0; i < names.length; i++) {
    const result = results[i]
    if (result === undefined) continue
    const t = !decision.allowed && !result.allowed ? retryAfterSeconds(result.retryAfterMs) : seconds(result.resetMs)
    const r = result.remaining > 0 ? result.remaining : 0
    value += `${i === 0 ? '' : ', '}${names[i]};r=${r};t=${t}`
  }
  return value
}

/** Index of the policy with the fewest whole tokens left (the one a client will hit first). */
export function tightestPolicy(decision: Decision): number {
  let tightest = 0
  let fewest = Infinity
  const results = decision.results
  for (let i = 0; i < results.length; i++) {
    const remaining = (results[i] as Decision['results'][number]).remaining
    if (remaining < fewest) {
      fewest = remaining
      tightest = i
    }
  }
  return tightest
}
