import { timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { PROBLEM_CONTENT_TYPE, describeValue, optionMessage, problemDetails } from '@spillway/latency-window/core'
import { meterFastify, replyOf } from '@spillway/latency-window/fastify'
import { Degradation } from './degradation.js'
import { DegradationOptionsError, InvalidOverrideError, UnknownFeatureError } from './errors.js'
import { LevelController, type LoadReading } from './level-controller.js'
import { meterReading } from './meter-reading.js'
import { runRouteFallback } from './route-fallback.js'
import { Overrides } from './overrides.js'
import { RedisOverrides } from './redis-overrides.js'
import { digest, normalizeDegradationOptions, type DegradationOptions } from './options.js'

export { DEGRADED_HEADER } from './header.js'
export type { DegradationOptions, DegradationAdminOptions } from './options.js'

/** A fallback given at the call site: a value, or a function returning one (sync or async). */
export type CallFallback<T> = T | (() => T | Promise<T>)

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * Whether the declared feature is on, in O(1). A `false` answer adds the feature to the
     * `Spillway-Degraded` header and counts one fallback served. Throws for an undeclared name.
     */
    feature(name: string): boolean
    /**
     * Runs `full()` while the feature is on; otherwise answers `fallback` (or the declared one),
     * calling it if it is a function. A fallback that throws is logged and answered as `null`.
     */
    degrade<T>(name: string, full: () => T | Promise<T>, fallback?: CallFallback<T>): Promise<T | null>
  }
  interface FastifyInstance {
    /** Level, features, overrides and events of load-driven degradation. */
    degradation: Degradation
  }
  interface FastifyContextConfig {
    /** Gate the whole route on this feature: while it is off the route answers its fallback. `false` opts out. */
    feature?: string | false
  }
}

const kServed = Symbol('spillway.degradation.served')
interface ServedRequest {
  [kServed]?: number[]
}

/** What a gated route answers while off when it has no usable fallback: a 503, never a 500. */
function unavailable(reply: FastifyReply, feature: string): void {
  void reply
    .code(503)
    .header('retry-after', '1')
    .type(PROBLEM_CONTENT_TYPE)
    .send(problemDetails(503, 'Service Unavailable', `${feature} is degraded and has no usable fallback`))
}

const spillwayDegradation: FastifyPluginAsync<DegradationOptions> = async function spillwayDegradation(fastify, input) {
  const config = normalizeDegradationOptions(input)
  const { features, percentile, header } = config
  const controller = new LevelController(config.controllerOptions)
  const overrides = new Overrides(features, config.levels, config.options.wallNow ?? Date.now)

  // Registered before our own hooks so that timing starts first; with the load shedder also
  // registered, whichever comes first measures and both read the same figures.
  const meter = meterFastify(fastify, 'degradation', config.meterOptions)
  // The window this plugin was configured with, even when another plugin created the meter first.
  const latency = meter.latencyWindow(config.options.latencyWindow)
  const read = (): LoadReading => meterReading(meter, latency, percentile)
  const state = new Degradation(features, controller, overrides, read)
  fastify.decorate('degradation', state)

  state.onEvent((event) => {
    if (event.type !== 'level') return
    const log = { from: event.from, to: event.to, reason: event.reason, off: event.off, on: event.on, reading: event.reading, value: event.value, threshold: event.threshold }
    if (event.to > event.from) fastify.log.warn(log, 'spillway degradation level up')
    else fastify.log.info(log, 'spillway degradation level down')
  })

  const { indexOf, names, fallbacks, hasFallback } = features

  // The header is written when a fallback is served, on the reply the shared meter links to the
  // request, not in an onSend hook: an onSend hook makes Fastify run a hook chain on every
  // response, degraded or not (counted: `bench:instructions`).
  function served(request: FastifyRequest, index: number): void {
    const servedRequest = request as ServedRequest
    let list = servedRequest[kServed]
    if (list === undefined) list = servedRequest[kServed] = [index]
    else if (list.includes(index)) return
    else list.push(index)
    state.recordFallback(index)
    if (header !== false) void replyOf(request)?.header(header, list.map((i) => names[i]).join(', '))
  }

  fastify.decorateRequest('feature', function feature(this: FastifyRequest, name: string): boolean {
    const index = indexOf.get(name)
    if (index === undefined) throw new UnknownFeatureError(name)
    if (state.isOnAt(index)) return true
    served(this, index)
    return false
  })

  fastify.decorateRequest('degrade', async function degrade<T>(
    this: FastifyRequest, name: string, full: () => T | Promise<T>, fallback?: CallFallback<T>
  ): Promise<T | null> {
    const index = indexOf.get(name)
    if (index === undefined) throw new UnknownFeatureError(name)
    if (state.isOnAt(index)) return await full()
    served(this, index)
    try {
      if (arguments.length >= 3) return typeof fallback === 'function' ? await (fallback as () => T | Promise<T>)() : fallback as T
      const declared = fallbacks[index]
      return (typeof declared === 'function' ? await declared(this) : declared ?? null) as T | null
    } catch (error) {
      this.log.warn({ err: error, feature: name }, 'spillway degradation: fallback threw, answering null')
      return null
    }
  })

  fastify.addHook('onRoute', function spillwayDegradationRoute(routeOptions) {
    const name = routeOptions.config?.feature
    if (name === undefined || name === false) return
    const index = typeof name === 'string' ? indexOf.get(name) : undefined
    if (index === undefined) {
      throw new DegradationOptionsError(optionMessage(`config.feature of ${routeOptions.method} ${routeOptions.url}`, name, 'false or a declared feature name'))
    }
    const featureName = name as string
    const withFallback = hasFallback[index] === true
    const fallback = fallbacks[index]
    const gate: onRequestHookHandler = function spillwayFeatureGate(request, reply, done) {
      if (state.isOnAt(index)) {
        done()
        return
      }
      served(request, index)
      if (!withFallback) {
        unavailable(reply, featureName)
        return
      }
      if (typeof fallback !== 'function') {
        void reply.send(fallback)
        return
      }
      const failed = (error: unknown) => {
        request.log.warn({ err: error, feature: featureName }, 'spillway degradation: route fallback threw')
        if (!reply.sent) unavailable(reply, featureName)
      }
      runRouteFallback(() => fallback(request, reply), (value) => {
        if (!reply.sent) void reply.send(value)
      }, failed)
    }
    const existing = routeOptions.onRequest
    routeOptions.onRequest = existing === undefined ? [gate] : [...(Array.isArray(existing) ? existing : [existing]), gate]
  })

  if (config.statusRoute !== false) {
    fastify.get(config.statusRoute, { config: { feature: false } }, async () => state.status())
  }
  if (config.admin !== undefined) registerAdmin(fastify, state, config.admin)

  let sync: RedisOverrides | undefined
  if (config.redis !== undefined) {
    sync = new RedisOverrides(config.redis, overrides, fastify.log)
    state.redis = sync
    sync.start()
  }

  let timer: NodeJS.Timeout | undefined
  if (config.evaluateIntervalMs > 0) {
    timer = setInterval(() => state.evaluate(), config.evaluateIntervalMs)
    // Degradation must never be what keeps a process alive.
    timer.unref()
  }
  fastify.addHook('onClose', function spillwayDegradationClose(_instance, done) {
    clearInterval(timer)
    sync?.stop()
    done()
  })
}

interface AdminBody {
  level?: number | null
  pins?: Record<string, boolean | null>
  ttlMs?: number
  reason?: string
}

function registerAdmin(fastify: FastifyInstance, state: Degradation, admin: { token: Buffer, path: string }): void {
  const authorized = (request: FastifyRequest): boolean => {
    const value = request.headers.authorization
    if (typeof value !== 'string' || !value.startsWith('Bearer ')) return false
    // Compared as digests so that the comparison takes the same time whatever the length given.
    return timingSafeEqual(digest(value.slice(7)), admin.token)
  }
  const guard: onRequestHookHandler = function spillwayDegradationAdminGuard(request, reply, done) {
    if (authorized(request)) {
      done()
      return
    }
    void reply
      .code(401)
      .header('www-authenticate', 'Bearer realm="spillway-degradation"')
      .type(PROBLEM_CONTENT_TYPE)
      .send(problemDetails(401, 'Unauthorized', 'a valid bearer token is required'))
  }
  const routeOptions = { onRequest: guard, config: { feature: false as const } }
  fastify.get(admin.path, routeOptions, async () => state.status())
  fastify.delete(admin.path, routeOptions, async () => {
    state.overrides.clear()
    state.evaluate()
    return state.status()
  })
  fastify.put(admin.path, routeOptions, async (request, reply) => {
    const body = request.body as AdminBody | null | undefined
    try {
      if (body === null || typeof body !== 'object' || Array.isArray(body)) {
        throw new InvalidOverrideError(optionMessage('body', body, 'an object { level?, pins?, ttlMs?, reason? }'))
      }
      const options: { ttlMs?: number, reason?: string } = {}
      if (body.ttlMs !== undefined) options.ttlMs = body.ttlMs
      if (body.reason !== undefined) options.reason = body.reason
      const pins = body.pins ?? {}
      if (pins === null || typeof pins !== 'object' || Array.isArray(pins)) {
        throw new InvalidOverrideError(optionMessage('pins', pins, 'an object { feature: true | false | null }'))
      }
      for (const [name, on] of Object.entries(pins)) {
        if (state.indexOf(name) < 0) throw new InvalidOverrideError(`pins: feature ${describeValue(name)} was not declared`)
        if (on !== null && typeof on !== 'boolean') throw new InvalidOverrideError(optionMessage(`pins.${name}`, on, 'true, false or null'))
      }
      if (options.ttlMs !== undefined && (typeof options.ttlMs !== 'number' || !Number.isFinite(options.ttlMs) || options.ttlMs <= 0)) {
        throw new InvalidOverrideError(optionMessage('ttlMs', options.ttlMs, 'a finite number > 0'))
      }
      // Validated before anything changes, so a bad request changes nothing.
      if (body.level !== undefined && body.level !== null) {
        const { level } = body
        if (typeof level !== 'number' || !Number.isInteger(level) || level < 0 || level > state.controller.levels) {
          throw new InvalidOverrideError(optionMessage('level', level, `null or an integer in [0, ${state.controller.levels}]`))
        }
      }
      if (body.level === null) state.overrides.clearLevel()
      else if (body.level !== undefined) state.overrides.forceLevel(body.level, options)
      for (const [name, on] of Object.entries(pins)) {
        if (on === null) state.overrides.unpin(name)
        else state.overrides.pin(name, on, options)
      }
    } catch (error) {
      if (!(error instanceof InvalidOverrideError)) throw error
      return reply.code(400).type(PROBLEM_CONTENT_TYPE).send(problemDetails(400, 'Bad Request', error.message))
    }
    return state.status()
  })
}

/** Load-driven graceful degradation: load becomes a level, the level turns features off. */
export const degradation = fp(spillwayDegradation, { name: '@spillway/degradation', fastify: '5.x' })
export { spillwayDegradation }
export default degradation
