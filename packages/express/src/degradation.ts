/**
 * Load-driven graceful degradation as Express middleware: the same `Degradation` state,
 * `LevelController` and `Overrides` as `@spillway/degradation`, fed from the shared request meter.
 *
 *   const degrade = degradation({ features: [{ name: 'recommendations', offAtLevel: 1, fallback: [] }] })
 *   app.use(degrade)                                             // req.feature(), req.degrade()
 *   app.post('/thumbnail', degrade.gate('image_processing'), makeThumbnail)   // fallback or 503 while off
 */
import { IncomingMessage, type ServerResponse } from 'node:http'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import {
  Degradation,
  DegradationOptionsError,
  LevelController,
  Overrides,
  RedisOverrides,
  UnknownFeatureError,
  meterReading,
  runRouteFallback,
  normalizeDegradationOptions,
  type CallFallback,
  type DegradationOptions,
  type LoadReading
} from '@spillway/degradation'
import { optionMessage, problemDetails } from '@spillway/latency-window/core'
import { checkLogger, type SpillwayLogger } from './logger.js'
import { RequestMeter } from './request-meter.js'
import { sendProblem, sendValue } from './respond.js'

declare global {
  // Express's own types merge request properties through this global namespace.
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /**
       * Whether the declared feature is on, in O(1). A `false` answer adds the feature to the
       * `Spillway-Degraded` header and counts one fallback served. Throws for an undeclared name.
       * Set by the `degradation()` middleware.
       */
      feature(name: string): boolean
      /**
       * Runs `full()` while the feature is on; otherwise answers `fallback` (or the declared one),
       * calling it if it is a function. A fallback that throws is logged and answered as `null`.
       */
      degrade<T>(name: string, full: () => T | Promise<T>, fallback?: CallFallback<T>): Promise<T | null>
    }
  }
}

/** What a feature answers while it is off: a value, or a function of the request (and, on a gated route, the response). */
export type ExpressFeatureFallback =
  | ((request: Request, response?: Response) => unknown)
  | string | number | boolean | null | object

export interface ExpressFeatureDeclaration {
  name: string
  offAtLevel: number
  fallback?: ExpressFeatureFallback
}

/** The plugin's options, less the admin route (build your own on `middleware.degradation.overrides`). */
export interface ExpressDegradationOptions extends Omit<DegradationOptions, 'features' | 'admin'> {
  features: ExpressFeatureDeclaration[]
  /** Where level changes, Redis trouble and throwing fallbacks are logged. Default `console`. */
  logger?: SpillwayLogger
}

export interface DegradationMiddleware extends RequestHandler {
  /** Level, features, overrides, status and events: the framework-free state. */
  readonly degradation: Degradation
  /** A route middleware: while `feature` is off the route answers the declared fallback, or 503. */
  gate(feature: string): RequestHandler
  /** Stops the evaluation timer, the Redis sharing and the event-loop sampler this middleware started. */
  close(): void
}

/** What `req.feature()` and `req.degrade()` call: the degradation middleware the request last passed. */
interface FeatureOwner {
  feature(request: Request, name: string): boolean
  degrade(request: Request, name: string, full: () => unknown, fallback: unknown, fallbackGiven: boolean): Promise<unknown>
}

// `req.feature` and `req.degrade` live on the request prototype of each Express app (installed once
// per prototype) and find their middleware in a WeakMap: Express gives every request a new
// prototype, after which each property added to the request itself costs microseconds. Shared
// through globalThis by every copy of this package.
const OWNERS = Symbol.for('spillway.express.degradation.owners')
const PATCHED = Symbol.for('spillway.express.degradation.prototypes')
const scope = globalThis as { [OWNERS]?: WeakMap<object, FeatureOwner>, [PATCHED]?: WeakSet<object> }
const owners = (scope[OWNERS] ??= new WeakMap())
const patched = (scope[PATCHED] ??= new WeakSet())

function ownerOf(request: Request): FeatureOwner {
  const owner = owners.get(request)
  if (owner === undefined) throw new TypeError('req.feature() and req.degrade() need the degradation() middleware mounted before this handler')
  return owner
}

function installOn(prototype: object): void {
  patched.add(prototype)
  Object.defineProperty(prototype, 'feature', {
    configurable: true,
    writable: true,
    value: function feature(this: Request, name: string): boolean {
      return ownerOf(this).feature(this, name)
    }
  })
  Object.defineProperty(prototype, 'degrade', {
    configurable: true,
    writable: true,
    value: function degrade(this: Request, name: string, full: () => unknown, fallback?: unknown): Promise<unknown> {
      return ownerOf(this).degrade(this, name, full, fallback, arguments.length >= 3)
    }
  })
}

const IDLE: LoadReading = { latencyMs: 0, samples: 0, eventLoopDelayMs: 0, utilization: 0, pressure: undefined }

function unavailable(response: ServerResponse, feature: string): void {
  sendProblem(response, 503, 1, problemDetails(503, 'Service Unavailable', `${feature} is degraded and has no usable fallback`))
}

/** Load-driven graceful degradation for Express: load becomes a level, the level turns features off. */
export function degradation(input: ExpressDegradationOptions): DegradationMiddleware {
  const config = normalizeDegradationOptions(input)
  if (config.admin !== undefined) {
    throw new DegradationOptionsError(optionMessage('admin', '(set)', 'absent: the Express middleware has no admin route; use middleware.degradation.overrides'))
  }
  const logger = checkLogger(input.logger, (message) => new DegradationOptionsError(message))
  const { features, percentile, header } = config
  const controller = new LevelController(config.controllerOptions)
  const overrides = new Overrides(features, config.levels, config.options.wallNow ?? Date.now)

  const meter = new RequestMeter('@spillway/express/degradation', config.meterOptions)
  // Before the first request there is no meter yet: an idle reading holds the level.
  const read = (): LoadReading => {
    const shared = meter.meter
    if (shared === undefined) return IDLE
    // The window this middleware was configured with, even when another one created the meter.
    return meterReading(shared, shared.latencyWindow(config.options.latencyWindow), percentile)
  }
  const state = new Degradation(features, controller, overrides, read)

  state.onEvent((event) => {
    if (event.type !== 'level') return
    const log = { from: event.from, to: event.to, reason: event.reason, off: event.off, on: event.on, reading: event.reading, value: event.value, threshold: event.threshold }
    if (event.to > event.from) logger.warn(log, 'spillway degradation level up')
    else logger.info(log, 'spillway degradation level down')
  })

  const { indexOf, names, fallbacks, hasFallback } = features

  // The features each request was served without, in the order it hit them (for the header).
  const servedByRequest = new WeakMap<object, number[]>()

  function served(request: Request, index: number): void {
    let list = servedByRequest.get(request)
    if (list === undefined) servedByRequest.set(request, list = [index])
    else if (list.includes(index)) return
    else list.push(index)
    state.recordFallback(index)
    // Express has no hook between the handler and the headers going out: the header is written as
    // soon as a feature is served by fallback, which is always before the handler answers.
    const response = request.res
    if (header !== false && response !== undefined && !response.headersSent) {
      response.setHeader(header, list.map((i) => names[i]).join(', '))
    }
  }

  function feature(request: Request, name: string): boolean {
    const index = indexOf.get(name)
    if (index === undefined) throw new UnknownFeatureError(name)
    if (state.isOnAt(index)) return true
    served(request, index)
    return false
  }

  async function degrade(request: Request, name: string, full: () => unknown, fallback: unknown, fallbackGiven: boolean): Promise<unknown> {
    const index = indexOf.get(name)
    if (index === undefined) throw new UnknownFeatureError(name)
    if (state.isOnAt(index)) return await full()
    served(request, index)
    try {
      if (fallbackGiven) return typeof fallback === 'function' ? await (fallback as () => unknown)() : fallback
      const declared = fallbacks[index] as ExpressFeatureFallback | undefined
      return typeof declared === 'function' ? await declared(request) : declared ?? null
    } catch (error) {
      logger.warn({ err: error, feature: name }, 'spillway degradation: fallback threw, answering null')
      return null
    }
  }

  const owner: FeatureOwner = { feature, degrade }
  const statusRoute = config.statusRoute
  const middleware = function spillwayDegradation(request: Request, response: Response, next: NextFunction): void {
    meter.start(request, response)
    owners.set(request, owner)
    const prototype = Object.getPrototypeOf(request) as object | null
    // Express's per-app request prototype; a request Express did not set up (a plain `http`
    // handler) gets the methods on itself rather than on every IncomingMessage of the process.
    if (prototype === IncomingMessage.prototype || prototype === null) installOn(request)
    else if (!patched.has(prototype)) installOn(prototype)
    if (statusRoute !== false && request.method === 'GET' && request.path === statusRoute) {
      response.json(state.status())
      return
    }
    next()
  }

  function gate(name: string): RequestHandler {
    const index = typeof name === 'string' ? indexOf.get(name) : undefined
    if (index === undefined) {
      throw new DegradationOptionsError(optionMessage('gate', name, 'a declared feature name'))
    }
    const withFallback = hasFallback[index] === true
    const fallback = fallbacks[index] as ExpressFeatureFallback | undefined
    return function spillwayFeatureGate(request: Request, response: Response, next: NextFunction): void {
      if (state.isOnAt(index)) {
        next()
        return
      }
      served(request, index)
      if (!withFallback) {
        unavailable(response, name)
        return
      }
      if (typeof fallback !== 'function') {
        sendValue(response, 200, fallback)
        return
      }
      const failed = (error: unknown): void => {
        logger.warn({ err: error, feature: name }, 'spillway degradation: route fallback threw')
        if (!response.headersSent) unavailable(response, name)
      }
      runRouteFallback(() => fallback(request, response), (value) => {
        if (!response.headersSent) sendValue(response, response.statusCode, value)
      }, failed)
    }
  }

  let sync: RedisOverrides | undefined
  if (config.redis !== undefined) {
    sync = new RedisOverrides(config.redis, overrides, logger)
    state.redis = sync
    sync.start()
  }

  let timer: NodeJS.Timeout | undefined
  if (config.evaluateIntervalMs > 0) {
    timer = setInterval(() => state.evaluate(), config.evaluateIntervalMs)
    // Degradation must never be what keeps a process alive.
    timer.unref()
  }

  return Object.assign(middleware, {
    degradation: state,
    gate,
    close(): void {
      clearInterval(timer)
      sync?.stop()
      meter.close()
    }
  })
}
