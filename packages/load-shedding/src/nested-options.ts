/** The checks of the options that are objects or choices of their own (`algorithm`, `front`, `queue`, header names). */
import type { IncomingMessage } from 'node:http'
import { checkFunction, checkKnownKeys, checkNumber, checkOneOf, checkOptionsObject, optionMessage } from '@spillway/latency-window/core'
import { AimdLimit } from './aimd-limit.js'
import { failOption } from './errors.js'
import { Gradient2Limit } from './gradient2-limit.js'
import type { LimitAlgorithm } from './limit-algorithm.js'
import type { LoadSheddingConfig, SheddingOptions } from './options.js'

export function checkHeaderName(option: string, value: unknown): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || !/^[!#$%&'*+.^`|~\w-]+$/.test(value)) {
    throw failOption(optionMessage(option, value, 'an HTTP header name'))
  }
  // Node lower-cases incoming header names.
  return value.toLowerCase()
}

export function checkLimit(options: Partial<SheddingOptions<never>>): LimitAlgorithm {
  const algorithm = options.algorithm ?? 'gradient2'
  if (typeof algorithm === 'object' && algorithm !== null) {
    checkFunction('algorithm.onSample', (algorithm as Partial<LimitAlgorithm>).onSample, failOption)
    checkNumber('algorithm.limit', algorithm.limit, { min: 1, fail: failOption })
    return algorithm
  }
  const name = checkOneOf('algorithm', algorithm, ['gradient2', 'aimd'], failOption)
  return name === 'aimd' ? new AimdLimit(options.aimd) : new Gradient2Limit(options.gradient2)
}

// `satisfies`: an option added to the interface and not here (or the other way round) fails the build.
const FRONT_OPTIONS = Object.keys({ cohortKey: true } satisfies Record<keyof Exclude<SheddingOptions<never>['front'], boolean | undefined>, true>)
const QUEUE_OPTIONS = Object.keys({
  turnBudgetMs: true, maxLength: true, headroom: true
} satisfies Record<keyof Exclude<SheddingOptions<never>['queue'], false | undefined>, true>)

export function checkFront(value: unknown): LoadSheddingConfig<never>['front'] {
  if (value === undefined || value === false) return undefined
  if (value === true) return { cohortKey: undefined }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw failOption(optionMessage('front', value, 'true, false or an object'))
  }
  checkKnownKeys('front', value, FRONT_OPTIONS, failOption)
  const { cohortKey } = value as { cohortKey?: unknown }
  return {
    cohortKey: cohortKey === undefined
      ? undefined
      : checkFunction<(request: IncomingMessage) => string | undefined>('front.cohortKey', cohortKey, failOption)
  }
}

export function checkQueue(value: unknown): LoadSheddingConfig<never>['queue'] {
  if (value === false) return undefined
  if (value !== undefined && (value === null || typeof value !== 'object' || Array.isArray(value))) {
    throw failOption(optionMessage('queue', value, 'an object or false'))
  }
  const queue = checkOptionsObject<{ turnBudgetMs: number, maxLength: number, headroom: number }>('queue', value, failOption)
  checkKnownKeys('queue', queue, QUEUE_OPTIONS, failOption)
  return {
    turnBudgetMs: checkNumber('queue.turnBudgetMs', queue.turnBudgetMs ?? 5, { min: 0, max: 1000, fail: failOption }),
    maxLength: checkNumber('queue.maxLength', queue.maxLength ?? 10_000, { min: 1, max: 1_000_000, integer: true, fail: failOption }),
    headroom: checkNumber('queue.headroom', queue.headroom ?? 0.5, { min: 0, max: 10, fail: failOption })
  }
}

