/**
 * Events for APM tools on `diagnostics_channel` (`spillway:rate-limit`). Published only when
 * someone subscribes, so they cost nothing otherwise.
 */
import diagnostics from 'node:diagnostics_channel'

export const RATE_LIMIT_CHANNEL = 'spillway:rate-limit'

export type RateLimitEvent =
  | { type: 'limited', key: string, route: string, violatedPolicies: string[], retryAfterMs: number }
  | { type: 'store-degraded', error: string }
  | { type: 'store-recovered', degradedForMs: number }

export const rateLimitChannel = diagnostics.channel(RATE_LIMIT_CHANNEL)

export function publish(event: RateLimitEvent): void {
  if (rateLimitChannel.hasSubscribers) rateLimitChannel.publish(event)
}
