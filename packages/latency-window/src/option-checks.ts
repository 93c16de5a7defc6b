/**
 * Option validation shared by every Spillway package, so that a bad option fails the same way
 * everywhere: at construction or registration, with a code naming the package and a message naming
 * the option and the value it was given.
 */

/** Builds the error to throw from a finished message. Plugins pass their `@fastify/error` class. */
export type OptionsErrorFactory = (message: string) => Error

/** The core's own error for a bad option. */
export class SpillwayOptionsError extends TypeError {
  readonly code = 'SPILLWAY_LATENCY_WINDOW_OPTIONS'
  override readonly name = 'SpillwayOptionsError'
}

const coreError: OptionsErrorFactory = (message) => new SpillwayOptionsError(message)

/** `"<option> must be <expected>, got <value>"`. */
export function optionMessage(option: string, value: unknown, expected: string): string {
  return `${option} must be ${expected}, got ${describeValue(value)}`
}

export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)
  if (typeof value === 'function') return 'a function'
  if (typeof value === 'bigint') return `${value}n`
  if (typeof value === 'symbol') return value.toString()
  if (value === null || typeof value !== 'object') return String(value)
  if (Array.isArray(value)) return `an array of ${value.length}`
  return 'an object'
}

export interface NumberRule {
  min: number
  max?: number
  integer?: boolean
  fail?: OptionsErrorFactory
}

/** A finite number in [min, max] (an integer when asked), or the error. */
export function checkNumber(option: string, value: unknown, rule: NumberRule): number {
  const { min, max = Number.MAX_SAFE_INTEGER, integer = false, fail = coreError } = rule
  const ok = typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max &&
    (!integer || Number.isInteger(value))
  if (!ok) {
    const kind = integer ? 'an integer' : 'a finite number'
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`
    throw fail(optionMessage(option, value, `${kind} ${range}`))
  }
  return value
}

export function checkFunction<T extends (...args: never[]) => unknown>(
  option: string, value: unknown, fail: OptionsErrorFactory = coreError
): T {
  if (typeof value !== 'function') throw fail(optionMessage(option, value, 'a function'))
  return value as T
}

/** One of a fixed set of strings. */
export function checkOneOf<const T extends string>(
  option: string, value: unknown, allowed: readonly T[], fail: OptionsErrorFactory = coreError
): T {
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw fail(optionMessage(option, value, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`))
  }
  return value as T
}

export function checkBoolean(option: string, value: unknown, fail: OptionsErrorFactory = coreError): boolean {
  if (typeof value !== 'boolean') throw fail(optionMessage(option, value, 'true or false'))
  return value
}

/** A plain options object (undefined reads as empty). */
export function checkOptionsObject<T extends object>(
  option: string, value: unknown, fail: OptionsErrorFactory = coreError
): Partial<T> {
  if (value === undefined) return {}
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw fail(optionMessage(option, value, 'an object'))
  }
  return value as Partial<T>
}

/** Every key of `given` is one of `known`: a misspelt option fails rather than falling back to its default. */
export function checkKnownKeys(
  option: string, given: object, known: readonly string[], fail: OptionsErrorFactory = coreError
): void {
  for (const key of Object.keys(given)) {
    if (!known.includes(key)) {
      throw fail(`${option}.${key} is not an option; ${option} takes ${known.join(', ')}`)
    }
  }
}
