import createError from '@fastify/error'
import type { OptionsErrorFactory } from '@spillway/latency-window/core'

/** Thrown at registration (or construction) when an option is invalid; the message names the option and its value. */
export const LoadSheddingOptionsError = createError<[string]>(
  'SPILLWAY_LOAD_SHEDDING_OPTIONS',
  'Invalid @spillway/load-shedding option: %s',
  500,
  TypeError
)

/** Hands the core's option checks our own error class. */
export const failOption: OptionsErrorFactory = (message) => new LoadSheddingOptionsError(message)
