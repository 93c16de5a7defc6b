import createError from '@fastify/error'
import type { OptionsErrorFactory } from '@spillway/latency-window/core'

/** A bad option, thrown at registration (or construction) and never later. */
export const DegradationOptionsError = createError('SPILLWAY_DEGRADATION_OPTIONS', '%s', 500, TypeError)

/** A handler asked about a feature that was never declared: a typo, better loud than silently on. */
export const UnknownFeatureError = createError(
  'SPILLWAY_DEGRADATION_UNKNOWN_FEATURE',
  'feature %s was not declared in the degradation plugin options',
  500,
  TypeError
)

export const failOption: OptionsErrorFactory = (message) => new DegradationOptionsError(message)

/** A bad override (API or admin route): the operator's input, answered 400 on the admin route. */
export const InvalidOverrideError = createError('SPILLWAY_DEGRADATION_OVERRIDE', '%s', 400, TypeError)
