import createError from '@fastify/error'
import type { OptionsErrorFactory } from '@spillway/latency-window/core'

/** Thrown at registration for a bad option; the message names the option and the value given. */
export const RateLimitOptionsError = createError('SPILLWAY_RATE_LIMIT_OPTIONS', '%s', 500, TypeError)

export const failOption: OptionsErrorFactory = (message) => new RateLimitOptionsError(message)

/** A cost function returned something that is not a finite number ≥ 0. */
export const RateLimitCostError = createError('SPILLWAY_RATE_LIMIT_COST', 'cost function returned %s, expected a finite number >= 0', 500)
