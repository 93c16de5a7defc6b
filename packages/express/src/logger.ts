/**
 * Express has no logger of its own, so the middlewares take one (pino and bunyan fit the
 * `(object, message)` shape). Only transitions are logged — a store going down or coming back, a
 * level change, a fallback that threw — never one line per request.
 */
import { optionMessage, type OptionsErrorFactory } from '@spillway/latency-window/core'

export interface SpillwayLogger {
  warn(payload: object, message: string): void
  info(payload: object, message: string): void
}

/** The default: `console`, so that an outage is never silent. */
export const consoleLogger: SpillwayLogger = {
  warn: (payload, message) => console.warn(message, payload),
  info: (payload, message) => console.info(message, payload)
}

export function checkLogger(value: unknown, fail: OptionsErrorFactory): SpillwayLogger {
  if (value === undefined) return consoleLogger
  const logger = value as Partial<SpillwayLogger> | null
  if (logger === null || typeof logger !== 'object' || typeof logger.warn !== 'function' || typeof logger.info !== 'function') {
    throw fail(optionMessage('logger', value, 'an object with warn(payload, message) and info(payload, message)'))
  }
  return logger as SpillwayLogger
}
