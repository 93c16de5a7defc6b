/**
 * The policies of a limiter or of a route, from its options, checked once: one `default` token
 * bucket from `capacity` and `refillPerSecond`, or the `policies` list (token buckets and
 * rate-limiter-flexible limiters). Token buckets come first, so that a bucket store's results are
 * a decision's first entries and the flexible policies' follow.
 */
import { checkKnownKeys, checkNumber, checkOptionsObject, optionMessage } from '@spillway/latency-window/core'
import { failOption } from './errors.js'
import type { BucketPolicy, BucketPolicyOptions, FlexibleLimiter, FlexiblePolicy, FlexiblePolicyOptions, Policy, PolicyOptions } from './policy.js'

const DEFAULT_CAPACITY = 60
const DEFAULT_REFILL_PER_SECOND = 1
const POLICY_NAME = /^[A-Za-z0-9_.:-]{1,64}$/
// `satisfies`: an option added to an interface and not here (or the other way round) fails the build.
const BUCKET_POLICY_OPTIONS = Object.keys({ name: true, capacity: true, refillPerSecond: true } satisfies Record<keyof BucketPolicyOptions, true>)
const FLEXIBLE_POLICY_OPTIONS = Object.keys({ name: true, limiter: true } satisfies Record<keyof FlexiblePolicyOptions, true>)

/** The options that set limits, for the whole limiter or (in `config.rateLimit`) for one route. */
export interface LimitOptions {
  /** Tokens the bucket holds (the burst). Setting it (or `refillPerSecond`/`policies`) gives the route its own buckets. */
  capacity?: number
  refillPerSecond?: number
  policies?: PolicyOptions[]
}

/** A limiter's or a route's policies, token buckets first. */
export interface PolicyLists {
  readonly policies: readonly Policy[]
  readonly buckets: readonly BucketPolicy[]
  readonly flexible: readonly FlexiblePolicy[]
}

/**
 * Hands out the memory store's slots (`BucketPolicy.index`) of one limiter: its own policies take
 * the first, then each route with limits of its own the next. The limiter holds it, not its
 * options, which are frozen once normalized.
 */
export class PolicySlots {
  #next: number

  constructor(first = 0) {
    this.#next = first
  }

  take(): number {
    return this.#next++
  }
}

/**
 * `optionPrefix` names the options in messages (`''` or `'config.rateLimit.'`); `scope` prefixes a
 * route's own bucket names in Redis, so that they never share a key with the limiter's.
 */
export function normalizePolicies(options: LimitOptions, optionPrefix: string, scope: string, slots: PolicySlots): PolicyLists {
  const policies: Policy[] = []
  if (options.policies === undefined) {
    policies.push(bucketPolicy({
      name: 'default',
      capacity: options.capacity ?? DEFAULT_CAPACITY,
      refillPerSecond: options.refillPerSecond ?? DEFAULT_REFILL_PER_SECOND
    }, optionPrefix, scope, slots))
  } else {
    // Only the limiter's own options: a route inherits the limiter's `capacity` (see `routeSettings`).
    if (options.capacity !== undefined && optionPrefix === '') {
      throw failOption(optionMessage('capacity', options.capacity, 'absent when policies are given (set it per policy)'))
    }
    if (!Array.isArray(options.policies) || options.policies.length === 0 || options.policies.length > 16) {
      throw failOption(optionMessage(`${optionPrefix}policies`, options.policies, 'an array of 1 to 16 policies'))
    }
    const names = new Set<string>()
    options.policies.forEach((raw, i) => {
      const option = `${optionPrefix}policies[${i}]`
      const policy = checkOptionsObject<PolicyOptions>(option, raw, failOption)
      checkKnownKeys(option, policy, 'limiter' in policy ? FLEXIBLE_POLICY_OPTIONS : BUCKET_POLICY_OPTIONS, failOption)
      if (typeof policy.name !== 'string' || !POLICY_NAME.test(policy.name)) {
        throw failOption(optionMessage(`${option}.name`, policy.name, 'a name of 1-64 letters, digits, "_", ".", ":" or "-"'))
      }
      if (names.has(policy.name)) throw failOption(optionMessage(`${option}.name`, policy.name, 'unique among the policies'))
      names.add(policy.name)
      if ('limiter' in policy) {
        if (!isFlexibleLimiter(policy.limiter)) {
          throw failOption(optionMessage(`${option}.limiter`, policy.limiter, 'a rate-limiter-flexible limiter'))
        }
        const limiter = policy.limiter
        policies.push(Object.freeze({
          kind: 'flexible', name: policy.name, capacity: limiter.points, limiter, windowSeconds: Math.max(0, Math.ceil(limiter.duration))
        }))
      } else {
        policies.push(bucketPolicy(policy as Partial<BucketPolicy>, `${option}.`, scope, slots))
      }
    })
  }
  const buckets = policies.filter((p): p is BucketPolicy => p.kind === 'bucket')
  const flexible = policies.filter((p): p is FlexiblePolicy => p.kind === 'flexible')
  return { policies: Object.freeze([...buckets, ...flexible]), buckets: Object.freeze(buckets), flexible: Object.freeze(flexible) }
}

function bucketPolicy(options: Partial<BucketPolicy>, optionPrefix: string, scope: string, slots: PolicySlots): BucketPolicy {
  const capacity = checkNumber(`${optionPrefix}capacity`, options.capacity, { min: 1, max: 1e12, integer: true, fail: failOption })
  const refillPerSecond = positive(`${optionPrefix}refillPerSecond`, options.refillPerSecond)
  const name = options.name ?? 'default'
  return Object.freeze({
    kind: 'bucket',
    name,
    capacity,
    refillPerSecond,
    index: slots.take(),
    storeId: scope === '' ? name : `${encodeURIComponent(scope)}${name}`,
    windowSeconds: Math.max(1, Math.ceil(capacity / refillPerSecond))
  })
}

function positive(option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw failOption(optionMessage(option, value, 'a finite number > 0'))
  }
  return value
}

function isFlexibleLimiter(value: unknown): value is FlexibleLimiter {
  return typeof value === 'object' && value !== null &&
    typeof (value as FlexibleLimiter).consume === 'function' && typeof (value as FlexibleLimiter).reward === 'function' &&
    typeof (value as FlexibleLimiter).points === 'number'
}
