/**
 * Options, checked once at registration (route options once per route) into frozen settings that
 * the limiter takes as they are. Every bad option throws `SPILLWAY_RATE_LIMIT_OPTIONS` with the
 * option's name and the value given. Generic in the framework's request and response: the Fastify
 * plugin states them with Fastify's, `@spillway/express` with Express's.
 */
import {
  checkBoolean, checkFunction, checkKnownKeys, checkNumber, checkOneOf, checkOptionsObject, normalizeRefusalPacing, optionMessage,
  type Clock, type RefusalPacingOptions, type RefusalPacingSettings
} from '@spillway/latency-window/core'
import { failOption } from './errors.js'
import { MIGRATION_HINTS } from './migration-hints.js'
import { defaultKey, type KeyGenerator } from './keys.js'
import { STORE_ERROR_MODES, type StoreErrorMode } from './store-fallback.js'
import type { RedisClient } from './redis-store.js'
import type { Decision } from './policy.js'
import { PolicySlots, normalizePolicies, type LimitOptions, type PolicyLists } from './policy-options.js'

export type CostFunction<Req> = (request: Req) => number
export type AllowListFunction<Req> = (request: Req, key: string) => boolean

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

/** The options a route may override in `config.rateLimit`. */
export interface RouteRateLimitOptions<Req> extends LimitOptions {
  key?: KeyGenerator<Req>
  cost?: number | CostFunction<Req>
  allowList?: string[] | AllowListFunction<Req>
}

export interface RateLimitOptions<Req, Res> extends RouteRateLimitOptions<Req> {
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
  onLimited?: (request: Req, response: Res, context: LimitedContext) => void
  /**
   * Refusal pacing: once a connection has had `afterRefusals` 429s in a row, each time back within a
   * second (a client that ignores Retry-After), its next 429s are held (about as long as its run
   * of refusals has lasted, `minDelayMs`–`maxDelayMs`) before they are sent. `false` turns it off.
   * Default `{ afterRefusals: 3, afterMs: 0, minDelayMs: 250, maxDelayMs: 750, maxHeld: 10000 }`.
   */
  pacing?: boolean | RefusalPacingOptions
  /** Monotonic clock in ms for the memory store; inject one in tests. Redis uses its own. */
  now?: Clock
}

export interface RouteSettings<Req> extends PolicyLists {
  readonly key: KeyGenerator<Req>
  readonly cost: number | CostFunction<Req>
  readonly allowList: AllowListFunction<Req> | undefined
}

export interface NormalizedOptions<Req, Res> extends RouteSettings<Req> {
  readonly global: boolean
  readonly maxKeyLength: number
  readonly redis: RedisClient | string | undefined
  readonly prefix: string
  readonly maxKeys: number
  readonly onStoreError: StoreErrorMode
  readonly storeTimeoutMs: number
  readonly probeIntervalMs: number
  readonly instances: number
  readonly headers: boolean
  readonly legacyHeaders: boolean
  readonly exposeHeaders: boolean
  readonly hook: 'onRequest' | 'preHandler'
  readonly errorResponseBuilder: RateLimitOptions<Req, Res>['errorResponseBuilder']
  readonly onLimited: RateLimitOptions<Req, Res>['onLimited']
  readonly pacing: RefusalPacingSettings | undefined
  readonly now: Clock | undefined
}

// `satisfies`: an option added to an interface and not here (or the other way round) fails the build.
const ROUTE_OPTIONS = Object.keys({
  capacity: true, refillPerSecond: true, policies: true, key: true, cost: true, allowList: true
} satisfies Record<keyof RouteRateLimitOptions<unknown>, true>)
const OPTIONS = Object.keys({
  capacity: true, refillPerSecond: true, policies: true, key: true, cost: true, allowList: true, global: true, maxKeyLength: true,
  redis: true, prefix: true, maxKeys: true, onStoreError: true, storeTimeoutMs: true, probeIntervalMs: true, instances: true,
  headers: true, legacyHeaders: true, exposeHeaders: true, hook: true, errorResponseBuilder: true, onLimited: true, pacing: true,
  now: true
} satisfies Record<keyof RateLimitOptions<unknown, unknown>, true>)

function isRedisClient(value: unknown): value is RedisClient {
  return typeof value === 'object' && value !== null &&
    typeof (value as { evalsha?: unknown }).evalsha === 'function' &&
    typeof (value as { eval?: unknown }).eval === 'function'
}

/**
 * The limiter's options; its policies take the memory store's first slots (`PolicySlots`).
 * `mountOptions`: the names a mount adds to the options and reads itself (Express's `logger`).
 */
export function normalizeOptions<Req, Res>(input: unknown, mountOptions: readonly string[] = []): NormalizedOptions<Req, Res> {
  const options = checkOptionsObject<RateLimitOptions<Req, Res>>('options', input, failOption)
  checkKnownKeys('', options, mountOptions.length === 0 ? OPTIONS : [...OPTIONS, ...mountOptions], failOption, MIGRATION_HINTS)
  const plugin = {
    key: options.key === undefined ? defaultKey : checkFunction<KeyGenerator<Req>>('key', options.key, failOption),
    cost: checkCost<Req>('cost', options.cost ?? 1),
    allowList: checkAllowList<Req>('allowList', options.allowList),
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
      : checkFunction<NonNullable<RateLimitOptions<Req, Res>['errorResponseBuilder']>>('errorResponseBuilder', options.errorResponseBuilder, failOption),
    onLimited: options.onLimited === undefined
      ? undefined
      : checkFunction<NonNullable<RateLimitOptions<Req, Res>['onLimited']>>('onLimited', options.onLimited, failOption),
    pacing: normalizeRefusalPacing('pacing', options.pacing, failOption),
    now: options.now === undefined ? undefined : checkFunction<Clock>('now', options.now, failOption)
  }
  const settings: NormalizedOptions<Req, Res> = { ...plugin, ...normalizePolicies(options, '', '', new PolicySlots()) }
  checkCostFits('cost', settings)
  return Object.freeze(settings)
}

/** A fixed cost above a bucket's capacity could never pass: refuse it at registration. */
function checkCostFits(option: string, settings: PolicyLists & { readonly cost: unknown }): void {
  if (typeof settings.cost !== 'number') return
  for (const policy of settings.buckets) {
    if (settings.cost > policy.capacity) {
      throw failOption(optionMessage(option, settings.cost, `at most the capacity of policy "${policy.name}" (${policy.capacity})`))
    }
  }
}

/**
 * The settings of one route: the limiter's, with `config.rateLimit` laid over them. A route that
 * sets its own limits gets its own buckets (scoped by `routeId`, in memory-store slots from
 * `slots`); one that only changes `key`, `cost` or `allowList` shares the limiter's.
 */
export function routeSettings<Req, Res>(
  plugin: NormalizedOptions<Req, Res>, input: unknown, routeId: string, slots: PolicySlots
): RouteSettings<Req> {
  if (input === undefined || input === true) return plugin
  const option = 'config.rateLimit'
  const options = checkOptionsObject<RouteRateLimitOptions<Req>>(option, input, failOption)
  checkKnownKeys(option, options, ROUTE_OPTIONS, failOption, MIGRATION_HINTS)
  const own = {
    key: options.key === undefined ? plugin.key : checkFunction<KeyGenerator<Req>>(`${option}.key`, options.key, failOption),
    cost: options.cost === undefined ? plugin.cost : checkCost<Req>(`${option}.cost`, options.cost),
    allowList: options.allowList === undefined ? plugin.allowList : checkAllowList<Req>(`${option}.allowList`, options.allowList)
  }
  const policies: PolicyLists = options.capacity !== undefined || options.refillPerSecond !== undefined || options.policies !== undefined
    ? normalizePolicies({ ...pickLimits(plugin), ...options }, `${option}.`, `${routeId}#`, slots)
    : { policies: plugin.policies, buckets: plugin.buckets, flexible: plugin.flexible }
  const settings: RouteSettings<Req> = { ...own, ...policies }
  checkCostFits(`${option}.cost`, settings)
  return Object.freeze(settings)
}

/** A route that overrides only `capacity` keeps the limiter's `refillPerSecond`, and the other way round. */
function pickLimits(plugin: PolicyLists): LimitOptions {
  const first = plugin.buckets.length === 1 && plugin.flexible.length === 0 ? plugin.buckets[0] : undefined
  return first === undefined ? {} : { capacity: first.capacity, refillPerSecond: first.refillPerSecond }
}

function checkCost<Req>(option: string, value: unknown): number | CostFunction<Req> {
  if (typeof value === 'function') return value as CostFunction<Req>
  return checkNumber(option, value, { min: 0, max: 1e12, fail: failOption })
}

function checkAllowList<Req>(option: string, value: unknown): AllowListFunction<Req> | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'function') return value as AllowListFunction<Req>
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
