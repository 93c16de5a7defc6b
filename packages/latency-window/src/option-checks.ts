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

/**
 * An option of another tool that users bring along when they migrate: whose it is, and what to
 * write here instead (or that there is no equivalent).
 */
export interface ForeignOption {
  readonly from: string
  readonly instead: string
}

/**
 * Every key of `given` is one of `known`: a misspelt option fails rather than falling back to its
 * default. `option` is the path of the object (`''` for the top level, `pacing`,
 * `config.rateLimit`); the message names the key's path and, in this order, what the key means
 * in the tool it comes from (`foreign`), the closest known name, or the known names.
 */
export function checkKnownKeys(
  option: string, given: object, known: readonly string[], fail: OptionsErrorFactory = coreError,
  foreign: Readonly<Record<string, ForeignOption>> = {}
): void {
  for (const key of Object.keys(given)) {
    if (known.includes(key)) continue
    const path = option === '' ? key : `${option}.${key}`
    // `Object.hasOwn`: a key named `constructor` or `toString` must not find the prototype's.
    const hint = Object.hasOwn(foreign, key) ? foreign[key] : undefined
    if (hint !== undefined) throw fail(`${path} is an option of ${hint.from}, not ours; ${hint.instead}`)
    const suggestion = closestName(key, known)
    if (suggestion !== undefined) throw fail(`${path} is not an option; did you mean ${suggestion}?`)
    throw fail(`${path} is not an option; ${option === '' ? 'the options are' : `${option} takes`} ${known.join(', ')}`)
  }
}

/**
 * The known name a misspelling most likely meant: the nearest by edit distance (case ignored),
 * when within a third of the name's length (at least 1), so that `refilPerSecond` finds
 * `refillPerSecond` and `maxDelay` finds `maxDelayMs`, while an unrelated name finds nothing.
 */
export function closestName(name: string, known: readonly string[]): string | undefined {
  const limit = Math.max(1, Math.floor(name.length / 3))
  let best: string | undefined
  let bestDistance = limit + 1
  for (const candidate of known) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase())
    if (distance < bestDistance) {
      best = candidate
      bestDistance = distance
    }
  }
  return best
}

/**
 * Insertions, deletions, substitutions and swaps of two neighbours needed to turn `a` into `b`
 * (the optimal string alignment distance): a swap is one typo (`capcaity`), not two.
 */
export function editDistance(a: string, b: string): number {
  // Three rows of the dynamic-programming table: the swap looks two rows back.
  let before = new Array<number>(b.length + 1).fill(0)
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  let current = new Array<number>(b.length + 1).fill(0)
  for (let i = 1; i <= a.length; i++) {
    current[0] = i
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let distance = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) distance = Math.min(distance, before[j - 2]! + 1)
      current[j] = distance
    }
    ;[before, previous, current] = [previous, current, before]
  }
  return previous[b.length]!
}
