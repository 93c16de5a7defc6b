import { checkKnownKeys, checkNumber, describeValue, optionMessage } from '@spillway/latency-window/core'
import { failOption } from './errors.js'

/**
 * What a feature answers while it is off: a value, or a function computing one (sync or async).
 * The function gets the framework's request (and, on a gated route, its reply or response); its
 * result is the answer. Generic in both, so that this module names no framework: the Fastify
 * plugin and the Express middleware each export it with their own request and response.
 */
export type FeatureFallback<Request = never, Response = never> =
  | ((request: Request, response?: Response) => unknown)
  | string | number | boolean | null | object

export interface FeatureDeclaration<Request = never, Response = never> {
  /** The flag's name, as handlers, route config and OpenFeature ask for it. */
  name: string
  /** The degradation level from which the feature is off (1 = the first to go). */
  offAtLevel: number
  /** The answer while the feature is off. Without one, a gated route answers 503. */
  fallback?: FeatureFallback<Request, Response>
}

/** The declared features, validated, in a form a request reads by index. */
export interface FeatureTable {
  readonly names: readonly string[]
  readonly offAtLevel: readonly number[]
  /** As declared; a function among them is called with the request (and response) of the mount that declared it. */
  readonly fallbacks: readonly unknown[]
  readonly hasFallback: readonly boolean[]
  /** name → index; read once per call, allocates nothing. */
  readonly indexOf: ReadonlyMap<string, number>
}

const NAME = /^[A-Za-z0-9_.:-]{1,100}$/
// `satisfies`: an option added to the interface and not here (or the other way round) fails the build.
const DECLARATION_OPTIONS = Object.keys({ name: true, offAtLevel: true, fallback: true } satisfies Record<keyof FeatureDeclaration, true>)

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
  const fallbacks: unknown[] = []
  const hasFallback: boolean[] = []
  const indexOf = new Map<string, number>()
  input.forEach((entry: unknown, i) => {
    const at = `features[${i}]`
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      throw failOption(optionMessage(at, entry, 'an object { name, offAtLevel, fallback? }'))
    }
    checkKnownKeys(at, entry, DECLARATION_OPTIONS, failOption)
    const declaration = entry as Partial<FeatureDeclaration<unknown, unknown>>
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
  return Object.freeze({
    names: Object.freeze(names), offAtLevel: Object.freeze(offAtLevel), fallbacks: Object.freeze(fallbacks),
    hasFallback: Object.freeze(hasFallback), indexOf
  })
}
