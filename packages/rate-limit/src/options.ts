/**
 * Options, checked once at registration (route options once per route, in `onRoute`). Every bad
 * option throws `SPILLWAY_RATE_LIMIT_OPTIONS` with the option's name and the value given.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import {
  checkBoolean, checkFunction, checkNumber, checkOneOf, checkOptionsObject, optionMessage, type Clock
} from '@spillway/latency-window/core'
import { failOption } from './errors.js'
import { defaultKey, type KeyGenerator } from './keys.js'
import { STORE_ERROR_MODES, type StoreErrorMode } from './store-fallback.js'
import type { RedisClient } from './redis-store.js'
import type { BucketPolicy, Decision, FlexibleLimiter, FlexiblePolicy, Policy, PolicyOptions } from './policy.js'

export type CostFunction<Req = FastifyRequest> = (request: Req) => number
export type AllowListFunction<Req = FastifyRequest> = (request: Req, key: string) => boolean

/** Handed to `onLimited` and `errorResponseBuilder` when a request is refused. */
export interface LimitedContext {
  /** The client key as the store saw it (escaped, hashed when long). */
  key: string
  /** `METHOD url` of the route. */
  route: string
  retryAfterMs: number
  retryAfterSeconds: number
  /** Names of the policies that lacked the tokens. */
  violatedPolicies: string[]
  decision: Decision
}

/**
 * The options a route may override in `config.rateLimit`. Generic in the request only so that
 * `@spillway/express` states the same options with Express's request.
 */
export interface RouteRateLimitOptions<Req = FastifyRequest> {
  /** Tokens the bucket holds (the burst). Setting it (or `refillPerSecond`/`policies`) gives the route its own buckets. */
  capacity?: number
  refillPerSecond?: number
  policies?: PolicyOptions[]
  key?: KeyGenerator<Req>
  cost?: number | CostFunction<Req>
  allowList?: string[] | AllowListFunction<Req>
}

export interface RateLimitOptions<Req = FastifyRequest, Res = FastifyReply> extends RouteRateLimitOptions<Req> {
  /** Limit every route (true) or only those with `config.rateLimit` (false). */
  global?: boolean
  /** Longer client keys are hashed (SHA-256) before they reach a store. */
  maxKeyLength?: number
  /** An ioredis client (Redis or Cluster) or a `redis://` URL; absent = memory store. */
  redis?: RedisClient | string
  /** Start of every Redis key. */
  prefix?: string
  /** Most buckets the memory store (or the local fallback) keeps per policy. */
  maxKeys?: number
  onStoreError?: StoreErrorMode
  storeTimeoutMs?: number
  probeIntervalMs?: number
  /** Instances sharing the Redis bucket: the local fallback bucket gets 1/instances of it. */
  instances?: number
  headers?: boolean
  legacyHeaders?: boolean
  /** Adds the header names to Access-Control-Expose-Headers, so browsers let scripts read them. */
  exposeHeaders?: boolean
  /** Where the decision is taken: `onRequest` (before body parsing) or `preHandler` (after auth hooks). */
  hook?: 'onRequest' | 'preHandler'
  errorResponseBuilder?: (request: Req, context: LimitedContext) => unknown
  onLimited?: (request: Req, reply: Res, context: LimitedContext) => void
  /** Monotonic clock in ms for the memory store; inject one in tests. Redis uses its own. */
  now?: Clock
}

export interface RouteSettings {
  policies: Policy[]
  buckets: BucketPolicy[]
  flexible: FlexiblePolicy[]
  key: KeyGenerator
  cost: number | CostFunction
  allowList: AllowListFunction | undefined
}

export interface NormalizedOptions extends RouteSettings {
  global: boolean
  maxKeyLength: number
  redis: RedisClient | string | undefined
  prefix: string
  maxKeys: number
  onStoreError: StoreErrorMode
  storeTimeoutMs: number
  probeIntervalMs: number
  instances: number
  headers: boolean
  legacyHeaders: boolean
  exposeHeaders: boolean
  hook: 'onRequest' | 'preHandler'
  errorResponseBuilder: RateLimitOptions['errorResponseBuilder']
  onLimited: RateLimitOptions['onLimited']
  now: Clock | undefined
  /** Next free memory-store slot for a policy. */
  nextPolicyIndex: number
}

const DEFAULT_CAPACITY = 60
const DEFAULT_REFILL_PER_SECOND = 1
const POLICY_NAME = /^[A-Za-z0-9_.:-]{1,64}$/

function positive(option: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw failOption(optionMessage(option, value, 'a finite number > 0'))
  }
  return value
}

function isRedisClient(value: unknown): value is RedisClient {
  return typeof value === 'object' && value !== null &&
    typeof (value as { evalsha?: unknown }).evalsha === 'function' &&
    typeof (value as { eval?: unknown }).eval === 'function'
}

function isFlexibleLimiter(value: unknown): value is FlexibleLimiter {
  return typeof value === 'object' && value !== null &&
    typeof (value as FlexibleLimiter).consume === 'function' && typeof (value as FlexibleLimiter).reward === 'function' &&
    typeof (value as FlexibleLimiter).points === 'number'
}

export function normalizeOptions(input: unknown): NormalizedOptions {
  const options = checkOptionsObject<RateLimitOptions>('options', input, failOption)
  const settings: NormalizedOptions = {
    policies: [],
    buckets: [],
    flexible: [],
    key: options.key === undefined ? defaultKey : checkFunction<KeyGenerator>('key', options.key, failOption),
    cost: checkCost('cost', options.cost ?? 1),
    allowList: checkAllowList('allowList', options.allowList),
    global: checkBoolean('global', options.global ?? true, failOption),
    maxKeyLength: checkNumber('maxKeyLength', options.maxKeyLength ?? 128, { min: 16, max: 4096, integer: true, fail: failOption }),
    redis: checkRedis(options.redis),
    prefix: checkPrefix(options.prefix ?? 'spillway-rl'),
    maxKeys: checkNumber('maxKeys', options.maxKeys ?? 10_000, { min: 10, integer: true, fail: failOption }),
    onStoreError: checkOneOf('onStoreError', options.onStoreError ?? 'local', STORE_ERROR_MODES, failOption),
    storeTimeoutMs: checkNumber('storeTimeoutMs', options.storeTimeoutMs ?? 50, { min: 1, max: 60_000, fail: failOption }),
    probeIntervalMs: checkNumber('probeIntervalMs', options.probeIntervalMs ?? 1000, { min: 10, max: 600_000, fail: failOption }),
    instances: checkNumber('instances', options.instances ?? 1, { min: 1, max: 100_000, integer: true, fail: failOption }),
    headers: checkBoolean('headers', options.headers ?? true, failOption),
    legacyHeaders: checkBoolean('legacyHeaders', options.legacyHeaders ?? false, failOption),
    exposeHeaders: checkBoolean('exposeHeaders', options.exposeHeaders ?? false, failOption),
    hook: checkOneOf('hook', options.hook ?? 'onRequest', ['onRequest', 'preHandler'] as const, failOption),
    errorResponseBuilder: options.errorResponseBuilder === undefined
      ? undefined
      : checkFunction<NonNullable<RateLimitOptions['errorResponseBuilder']>>('errorResponseBuilder', options.errorResponseBuilder, failOption),
    onLimited: options.onLimited === undefined
      ? undefined
      : checkFunction<NonNullable<RateLimitOptions['onLimited']>>('onLimited', options.onLimited, failOption),
    now: options.now === undefined ? undefined : checkFunction<Clock>('now', options.now, failOption),
    nextPolicyIndex: 0
  }
  assignPolicies(settings, settings, options, '', '')
  checkCostFits('cost', settings)
  return settings
}

/** A fixed cost above a bucket's capacity could never pass: refuse it at registration. */
function checkCostFits(option: string, settings: RouteSettings): void {
  if (typeof settings.cost !== 'number') return
  for (const policy of settings.buckets) {
    if (settings.cost > policy.capacity) {
      throw failOption(optionMessage(option, settings.cost, `at most the capacity of policy "${policy.name}" (${policy.capacity})`))
    }
  }
}

/**
 * The settings of one route: the plugin's, with `config.rateLimit` laid over them. A route that
 * sets its own limits gets its own buckets (scoped by method and url); one that only changes
 * `key`, `cost` or `allowList` shares the plugin's.
 */
export function routeSettings(plugin: NormalizedOptions, input: unknown, routeId: string): RouteSettings {
  if (input === undefined || input === true) return plugin
  const option = 'config.rateLimit'
  const options = checkOptionsObject<RouteRateLimitOptions>(option, input, failOption)
  const settings: RouteSettings = {
    policies: plugin.policies,
    buckets: plugin.buckets,
    flexible: plugin.flexible,
    key: options.key === undefined ? plugin.key : checkFunction<KeyGenerator>(`${option}.key`, options.key, failOption),
    cost: options.cost === undefined ? plugin.cost : checkCost(`${option}.cost`, options.cost),
    allowList: options.allowList === undefined ? plugin.allowList : checkAllowList(`${option}.allowList`, options.allowList)
  }
  if (options.capacity !== undefined || options.refillPerSecond !== undefined || options.policies !== undefined) {
    assignPolicies(plugin, settings, { ...pickLimits(plugin), ...options }, `${option}.`, `${routeId}#`)
  }
  checkCostFits(`${option}.cost`, settings)
  return settings
}

/** A route that overrides only `capacity` keeps the plugin's `refillPerSecond`, and the other way round. */
function pickLimits(plugin: NormalizedOptions): RouteRateLimitOptions {
  const first = plugin.buckets.length === 1 && plugin.flexible.length === 0 ? plugin.buckets[0] : undefined
  return first === undefined ? {} : { capacity: first.capacity, refillPerSecond: first.refillPerSecond }
}

function assignPolicies(
  plugin: NormalizedOptions, settings: RouteSettings, options: RouteRateLimitOptions, optionPrefix: string, scope: string
): void {
  const policies: Policy[] = []
  if (options.policies === undefined) {
    policies.push(bucketPolicy(plugin, {
      name: 'default',
      capacity: options.capacity ?? DEFAULT_CAPACITY,
      refillPerSecond: options.refillPerSecond ?? DEFAULT_REFILL_PER_SECOND
    }, optionPrefix, scope))
  } else {
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
        policies.push({ kind: 'flexible', name: policy.name, capacity: limiter.points, limiter, windowSeconds: Math.max(0, Math.ceil(limiter.duration)) })
      } else {
        policies.push(bucketPolicy(plugin, policy as Partial<BucketPolicy>, `${option}.`, scope))
      }
    })
  }
  settings.policies = [...policies.filter((p) => p.kind === 'bucket'), ...policies.filter((p) => p.kind === 'flexible')]
  settings.buckets = settings.policies.filter((p): p is BucketPolicy => p.kind === 'bucket')
  settings.flexible = settings.policies.filter((p): p is FlexiblePolicy => p.kind === 'flexible')
}

function bucketPolicy(
  plugin: NormalizedOptions, options: Partial<BucketPolicy>, optionPrefix: string, scope: string
): BucketPolicy {
  const capacity = checkNumber(`${optionPrefix}capacity`, options.capacity, { min: 1, max: 1e12, integer: true, fail: failOption })
  const refillPerSecond = positive(`${optionPrefix}refillPerSecond`, options.refillPerSecond)
  const name = options.name ?? 'default'
  return {
    kind: 'bucket',
    name,
    capacity,
    refillPerSecond,
    index: plugin.nextPolicyIndex++,
    storeId: scope === '' ? name : `${encodeURIComponent(scope)}${name}`,
    windowSeconds: Math.max(1, Math.ceil(capacity / refillPerSecond))
  }
}

function checkCost(option: string, value: unknown): number | CostFunction {
  if (typeof value === 'function') return value as CostFunction
  return checkNumber(option, value, { min: 0, max: 1e12, fail: failOption })
}

function checkAllowList(option: string, value: unknown): AllowListFunction | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'function') return value as AllowListFunction
  if (!Array.isArray(value) || !value.every((entry) => typeof entry === 'string')) {
    throw failOption(optionMessage(option, value, 'an array of strings or a function'))
  }
  const allowed = new Set<string>(value)
  return (_request, key) => allowed.has(key)
}

function checkRedis(value: unknown): RedisClient | string | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'string') {
    if (!/^rediss?:\/\//.test(value)) throw failOption(optionMessage('redis', value, 'an ioredis client or a redis:// URL'))
    return value
  }
  if (!isRedisClient(value)) throw failOption(optionMessage('redis', value, 'an ioredis client or a redis:// URL'))
  return value
}

function checkPrefix(value: unknown): string {
  if (typeof value !== 'string' || !/^[\x21-\x7e]{1,64}$/.test(value) || /[{}]/.test(value)) {
    throw failOption(optionMessage('prefix', value, '1-64 printable ASCII characters without "{" or "}"'))
  }
  return value
}
