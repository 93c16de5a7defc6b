/**
 * The options shared by the Fastify plugin and the Express middleware, normalized once into the
 * frozen `DegradationConfig` that everything else reads.
 */
import { createHash } from 'node:crypto'
import {
  checkFunction,
  checkKnownKeys,
  checkNumber,
  checkOptionsObject,
  optionMessage,
  type Clock,
  type EventLoopSignalsOptions,
  type LatencyWindowOptions,
  type ServerMeterOptions
} from '@spillway/latency-window/core'
import { DEGRADED_HEADER } from './header.js'
import { failOption } from './errors.js'
import { declareFeatures, type FeatureDeclaration, type FeatureTable } from './features.js'
import { normalizeLevelOptions, type LevelControllerOptions, type LevelSettings } from './level-options.js'
import { MIGRATION_HINTS } from './migration-hints.js'
import type { WallClock } from './overrides.js'
import type { RedisOverridesOptions } from './redis-overrides.js'

export interface DegradationAdminOptions {
  /** Required: requests must carry `Authorization: Bearer <token>`. At least 16 characters. */
  token: string
  /** Default `/_spillway/degradation`. */
  path?: string
}

/**
 * Generic in the framework's request and response, which only a fallback function sees: the
 * Fastify plugin and the Express middleware each export it with theirs.
 */
export interface DegradationOptions<Request = never, Response = never> extends Omit<LevelControllerOptions, 'now'> {
  /** The features, each with the level at which it turns off and its fallback. Required. */
  features: FeatureDeclaration<Request, Response>[]
  /** The latency percentile judged against `thresholds.latencyMs`, in (0, 1]. Default 0.95. */
  percentile?: number
  /** How often the level is re-evaluated, ms; 0 evaluates only when `fastify.degradation.evaluate()` is called. Default 500. */
  evaluateIntervalMs?: number
  /** Name of the header listing degraded features, or false for none. Default `Spillway-Degraded`. */
  header?: string | false
  /** The shared latency window, when this plugin is the first Spillway plugin on the server. */
  latencyWindow?: Omit<LatencyWindowOptions, 'now'>
  /** The shared event-loop sampler, when this plugin is the first Spillway plugin on the server. */
  eventLoop?: EventLoopSignalsOptions
  /** Share overrides across instances through Redis. */
  redis?: RedisOverridesOptions
  /** A GET route answering the status (level, features, overrides), or false. Default false. */
  statusRoute?: string | false
  /** A token-protected route to read (GET), set (PUT) and clear (DELETE) overrides, or false. Default false. */
  admin?: DegradationAdminOptions | false
  /** Monotonic clock for the controller and the shared meter (tests). Default `performance.now`. */
  now?: Clock
  /** Wall clock for override expiry, shared across machines (tests). Default `Date.now`. */
  wallNow?: WallClock
}

/** The options, every default applied and every value checked: what the plugin and the middleware read. */
export interface DegradationConfig {
  readonly features: FeatureTable
  readonly controller: LevelSettings
  readonly percentile: number
  readonly evaluateIntervalMs: number
  readonly header: string | false
  readonly statusRoute: string | false
  /** The admin route (Fastify only), its token kept as a digest. */
  readonly admin: { readonly token: Buffer, readonly path: string } | undefined
  readonly redis: RedisOverridesOptions | undefined
  readonly wallNow: WallClock
  /** The window shape this plugin judges latency over, whoever created the shared meter. */
  readonly latencyWindow: Omit<LatencyWindowOptions, 'now'> | undefined
  /** The shared meter's options: they create the meter when this plugin is the first to ask for it. */
  readonly meter: ServerMeterOptions
}

// `satisfies`: an option added to an interface and not here (or the other way round) fails the build.
const OPTIONS = Object.keys({
  features: true, percentile: true, evaluateIntervalMs: true, header: true, latencyWindow: true, eventLoop: true, redis: true,
  statusRoute: true, admin: true, now: true, wallNow: true, levels: true, thresholds: true, recoverRatio: true, dwellMs: true,
  minSamples: true
} satisfies Record<keyof DegradationOptions, true>)
const ADMIN_OPTIONS = Object.keys({ token: true, path: true } satisfies Record<keyof DegradationAdminOptions, true>)
const REDIS_OPTIONS = Object.keys({ client: true, prefix: true, refreshIntervalMs: true } satisfies Record<keyof RedisOverridesOptions, true>)
const LATENCY_WINDOW_OPTIONS = Object.keys({ windowMs: true, slices: true } satisfies Record<keyof NonNullable<DegradationOptions['latencyWindow']>, true>)
const EVENT_LOOP_OPTIONS = Object.keys({ intervalMs: true, resolutionMs: true, sources: true } satisfies Record<keyof EventLoopSignalsOptions, true>)

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}$/
const PATH = /^\/[^\s?#]*$/

/**
 * Every option checked once, at registration (Fastify) or creation (Express): a bad one throws
 * `SPILLWAY_DEGRADATION_OPTIONS` naming the option and its value. `mountOptions`: the names a
 * mount adds to the options and reads itself (Express's `logger`).
 */
export function normalizeDegradationOptions(input: unknown, mountOptions: readonly string[] = []): DegradationConfig {
  const options = checkOptionsObject<DegradationOptions<unknown, unknown>>('options', input, failOption)
  checkKnownKeys('', options, mountOptions.length === 0 ? OPTIONS : [...OPTIONS, ...mountOptions], failOption, MIGRATION_HINTS)
  const level: LevelControllerOptions = {}
  if (options.levels !== undefined) level.levels = options.levels
  if (options.thresholds !== undefined) level.thresholds = options.thresholds
  if (options.recoverRatio !== undefined) level.recoverRatio = options.recoverRatio
  if (options.dwellMs !== undefined) level.dwellMs = options.dwellMs
  if (options.minSamples !== undefined) level.minSamples = options.minSamples
  if (options.now !== undefined) level.now = options.now
  const controller = normalizeLevelOptions(level)
  const features = declareFeatures(options.features, controller.levels)
  const percentile = checkNumber('percentile', options.percentile ?? 0.95, { min: 0, max: 1, fail: failOption })
  if (percentile === 0) throw failOption(optionMessage('percentile', 0, 'a finite number in (0, 1]'))
  const evaluateIntervalMs = checkNumber('evaluateIntervalMs', options.evaluateIntervalMs ?? 500, { min: 0, max: 60_000, fail: failOption })
  if (evaluateIntervalMs > 0 && evaluateIntervalMs < 10) {
    throw failOption(optionMessage('evaluateIntervalMs', evaluateIntervalMs, '0 or a finite number in [10, 60000]'))
  }
  const header = options.header ?? DEGRADED_HEADER
  if (header !== false && (typeof header !== 'string' || !HEADER_NAME.test(header))) {
    throw failOption(optionMessage('header', header, 'false or a header name (an HTTP token)'))
  }
  const statusRoute = options.statusRoute ?? false
  if (statusRoute !== false && (typeof statusRoute !== 'string' || !PATH.test(statusRoute))) {
    throw failOption(optionMessage('statusRoute', statusRoute, 'false or a path starting with "/"'))
  }
  let admin: DegradationConfig['admin']
  if (options.admin !== undefined && options.admin !== false) {
    const given = checkOptionsObject<DegradationAdminOptions>('admin', options.admin, failOption)
    checkKnownKeys('admin', given, ADMIN_OPTIONS, failOption)
    if (typeof given.token !== 'string' || given.token.length < 16) {
      // An admin route that can force every feature off must never be open.
      throw failOption(optionMessage('admin.token', given.token === undefined ? undefined : '(hidden)', 'a string of at least 16 characters'))
    }
    const path = given.path ?? '/_spillway/degradation'
    if (typeof path !== 'string' || !PATH.test(path)) throw failOption(optionMessage('admin.path', path, 'a path starting with "/"'))
    admin = Object.freeze({ token: digest(given.token), path })
  }
  let redis: RedisOverridesOptions | undefined
  if (options.redis !== undefined) {
    const given = checkOptionsObject<RedisOverridesOptions>('redis', options.redis, failOption)
    checkKnownKeys('redis', given, REDIS_OPTIONS, failOption)
    const client = given.client as Partial<RedisOverridesOptions['client']> | undefined
    if (client === null || typeof client !== 'object') throw failOption(optionMessage('redis.client', client, 'a Redis client (ioredis)'))
    for (const method of ['get', 'set', 'publish', 'duplicate'] as const) checkFunction(`redis.client.${method}`, client[method], failOption)
    if (given.prefix !== undefined && (typeof given.prefix !== 'string' || given.prefix.length > 200)) {
      throw failOption(optionMessage('redis.prefix', given.prefix, 'a string of at most 200 characters'))
    }
    // Checked when given; the defaults are `RedisOverrides`'s own, which users may also construct.
    if (given.refreshIntervalMs !== undefined) {
      checkNumber('redis.refreshIntervalMs', given.refreshIntervalMs, { min: 0, max: 3_600_000, fail: failOption })
    }
    redis = Object.freeze({ ...given }) as RedisOverridesOptions
  }
  const wallNow = options.wallNow === undefined ? Date.now : checkFunction<WallClock>('wallNow', options.wallNow, failOption)
  // Their values are checked where the meter is created; their names here, so that a misspelt one
  // fails at registration also when the meter comes later (Express creates it at the first
  // request) or came earlier (created by another plugin, it reads only the names it knows).
  if (options.latencyWindow !== undefined) {
    checkKnownKeys('latencyWindow', checkOptionsObject('latencyWindow', options.latencyWindow, failOption), LATENCY_WINDOW_OPTIONS, failOption)
  }
  if (options.eventLoop !== undefined) {
    checkKnownKeys('eventLoop', checkOptionsObject('eventLoop', options.eventLoop, failOption), EVENT_LOOP_OPTIONS, failOption)
  }
  const meter: ServerMeterOptions = {}
  if (options.now !== undefined) meter.now = controller.now
  if (options.latencyWindow !== undefined) meter.latency = options.latencyWindow
  if (options.eventLoop !== undefined) meter.eventLoop = options.eventLoop
  return Object.freeze({
    features, controller, percentile, evaluateIntervalMs, header, statusRoute, admin, redis, wallNow,
    latencyWindow: options.latencyWindow, meter: Object.freeze(meter)
  })
}

export function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest()
}

