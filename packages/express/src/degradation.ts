/**
 * The Express mount of `@spillway/degradation`: a request goes through its framework-free
 * `DegradationProtocol`; this file installs `req.feature()`/`req.degrade()`, the status route and
 * `gate(feature)`, and says how Express answers.
 */
import { IncomingMessage } from 'node:http'
import type { NextFunction, Request, RequestHandler, Response } from 'express'
import {
  DegradationOptionsError, DegradationProtocol, ServerDegradation, failOption, normalizeDegradationOptions, readMeter,
  type CallFallback, type Degradation, type DegradationMount, type DegradationOptions, type FeatureDeclaration, type FeatureFallback
} from '@spillway/degradation/core'
import { optionMessage, sendRawProblem, startTiming } from '@spillway/latency-window/core'
import { checkLogger, type SpillwayLogger } from './logger.js'
import { RequestMeter } from './request-meter.js'
import { sendValue } from './respond.js'

declare global {
  // Express's own types merge request properties through this global namespace.
  // eslint-disable-next-line @typescript-eslint/no-namespace
  namespace Express {
    interface Request {
      /** Whether the declared feature is on; a `false` answer names it in `Spillway-Degraded`. Set by `degradation()`. */
      feature(name: string): boolean
      /** `full()` while the feature is on, else the fallback (given, or declared); one that throws answers `null`. */
      degrade<T>(name: string, full: () => T | Promise<T>, fallback?: CallFallback<T>): Promise<T | null>
    }
  }
}

/** What a feature answers while it is off: a value, or a function of the request (and, on a gated route, the response). */
export type ExpressFeatureFallback = FeatureFallback<Request, Response>
export type ExpressFeatureDeclaration = FeatureDeclaration<Request, Response>

/** The plugin's options, less the admin route (build your own on `middleware.degradation.overrides`). */
export interface ExpressDegradationOptions extends Omit<DegradationOptions<Request, Response>, 'admin'> {
  /** Where level changes, Redis trouble and throwing fallbacks are logged. Default `console`. */
  logger?: SpillwayLogger
}

/** The options the middleware adds to the plugin's and reads itself (`satisfies`: all of them). */
const EXPRESS_OPTIONS = Object.keys({ logger: true } satisfies Record<Exclude<keyof ExpressDegradationOptions, keyof DegradationOptions<Request, Response>>, true>)

export interface DegradationMiddleware extends RequestHandler {
  /** Level, features, overrides, status and events: the framework-free state. */
  readonly degradation: Degradation
  /** A route middleware: while `feature` is off the route answers the declared fallback, or 503. */
  gate(feature: string): RequestHandler
  /** Stops the evaluation timer, the Redis sharing and the event-loop sampler this middleware started. */
  close(): void
}

/** What `req.feature()` and `req.degrade()` call: the protocol of the degradation middleware the request last passed. */
type FeatureOwner = Pick<DegradationProtocol<Request, Response>, 'feature' | 'degrade'>

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

const methods = {
  feature(this: Request, name: string): boolean {
    return ownerOf(this).feature(this, name)
  },
  degrade(this: Request, name: string, full: () => unknown, fallback?: unknown): Promise<unknown> {
    return ownerOf(this).degrade(this, name, full, fallback, arguments.length >= 3)
  }
}

function installOn(target: object): void {
  patched.add(target)
  for (const [name, value] of Object.entries(methods)) Object.defineProperty(target, name, { configurable: true, writable: true, value })
}

function expressMount(logger: SpillwayLogger): DegradationMount<Request, Response> {
  return {
    raw: (request) => request,
    // Express has no hook between the handler and the headers going out: the header is written as
    // soon as a feature is served by fallback, which is always before the handler answers.
    setHeader: (request, name, value) => {
      if (request.res !== undefined && !request.res.headersSent) request.res.setHeader(name, value)
    },
    sent: (response) => response.headersSent,
    send: (response, value) => sendValue(response, response.statusCode, value),
    unavailable: (response, retryAfterSeconds, body) => sendRawProblem(response, 503, retryAfterSeconds, body),
    warn: (_request, payload, message) => logger.warn(payload, message)
  }
}

/** Load-driven graceful degradation for Express: load becomes a level, the level turns features off. */
export function degradation(input: ExpressDegradationOptions): DegradationMiddleware {
  const config = normalizeDegradationOptions(input, EXPRESS_OPTIONS)
  if (config.admin !== undefined) {
    throw new DegradationOptionsError(optionMessage('admin', '(set)', 'absent: the Express middleware has no admin route; use middleware.degradation.overrides'))
  }
  const logger = checkLogger(input.logger, failOption)
  const meter = new RequestMeter('@spillway/express/degradation', config.meter, failOption)
  // Before the first request there is no meter yet: an idle reading holds the level.
  const running = new ServerDegradation(config, () => readMeter(meter.meter, config), logger)
  const protocol = new DegradationProtocol(running.state, config, expressMount(logger))
  const statusRoute = config.statusRoute

  const middleware = function spillwayDegradation(request: Request, response: Response, next: NextFunction): void {
    // The app's meter whoever times the request: mounted after another Spillway middleware, this
    // one would otherwise never meet it, and read an idle load at every evaluation.
    startTiming(meter.meterOf(request), request, response)
    owners.set(request, protocol)
    const prototype = Object.getPrototypeOf(request) as object | null
    // Express's per-app request prototype; a request Express did not set up (a plain `http`
    // handler) gets the methods on itself rather than on every IncomingMessage of the process.
    if (prototype === IncomingMessage.prototype || prototype === null) installOn(request)
    else if (!patched.has(prototype)) installOn(prototype)
    if (statusRoute !== false && request.method === 'GET' && request.path === statusRoute) {
      response.json(running.state.status())
      return
    }
    next()
  }

  function gate(name: string): RequestHandler {
    const index = protocol.indexOf(name)
    if (index < 0) throw new DegradationOptionsError(optionMessage('gate', name, 'a declared feature name'))
    return protocol.gate(index)
  }

  running.start()
  return Object.assign(middleware, {
    degradation: running.state,
    gate,
    close(): void {
      running.stop()
      meter.close()
    }
  })
}
