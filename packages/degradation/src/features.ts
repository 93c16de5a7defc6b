import type { FastifyReply, FastifyRequest } from 'fastify'
import { checkNumber, describeValue, optionMessage } from '@spillway/latency-window/core'
import { failOption } from './errors.js'

/**
 * What a feature answers while it is off: a value, or a function computing one (sync or async).
 * The function gets the request (and, on a gated route, the reply); its result is the answer.
 */
export type FeatureFallback =
  | ((request: FastifyRequest, reply?: FastifyReply) => unknown)
  | string | number | boolean | null | object

export interface FeatureDeclaration {
  /** The flag's name, as handlers, route config and OpenFeature ask for it. */
  name: string
  /** The degradation level from which the feature is off (1 = the first to go). */
  offAtLevel: number
  /** The answer while the feature is off. Without one, a gated route answers 503. */
  fallback?: FeatureFallback
}

/** The declared features, validated, in a form a request reads by index. */
export interface FeatureTable {
  readonly names: readonly string[]
  readonly offAtLevel: readonly number[]
  readonly fallbacks: readonly (FeatureFallback | undefined)[]
  readonly hasFallback: readonly boolean[]
  /** name → index; read once per call, allocates nothing. */
  readonly indexOf: ReadonlyMap<string, number>
}

const NAME = /^[A-Za-z0-9_.:-]{1,100}$/

/**
 * Validates the declarations. The order in which features turn off is configuration: their
 * `offAtLevel`, which must lie within the controller's `levels`.
 */
export function declareFeatures(input: unknown, levels: number): FeatureTable {
  if (!Array.isArray(input) || input.length === 0) {
    throw failOption(optionMessage('features', input, 'a non-empty array of { name, offAtLevel, fallback? }'))
  }
  const names: string[] = []
  const offAtLevel: number[] = []
  const fallbacks: (FeatureFallback | undefined)[] = []
  const hasFallback: boolean[] = []
  const indexOf = new Map<string, number>()
  input.forEach((entry: unknown, i) => {
    const at = `features[${i}]`
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      throw failOption(optionMessage(at, entry, 'an object { name, offAtLevel, fallback? }'))
    }
    const declaration = entry as Partial<FeatureDeclaration>
    const { name } = declaration
    if (typeof name !== 'string' || !NAME.test(name)) {
      throw failOption(optionMessage(`${at}.name`, name, 'a string of 1–100 letters, digits, "_", ".", ":" or "-"'))
    }
    if (indexOf.has(name)) {
      throw failOption(`${at}.name must be unique, got ${describeValue(name)} twice`)
    }
    const level = checkNumber(`${at}.offAtLevel`, declaration.offAtLevel, {
      min: 1, max: levels, integer: true, fail: failOption
    })
    indexOf.set(name, names.length)
    names.push(name)
    offAtLevel.push(level)
    const declared = Object.hasOwn(declaration, 'fallback') && declaration.fallback !== undefined
    fallbacks.push(declared ? declaration.fallback : undefined)
    hasFallback.push(declared)
  })
  return { names, offAtLevel, fallbacks, hasFallback, indexOf }
}
