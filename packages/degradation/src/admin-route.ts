/** The Fastify plugin's admin route: operators force a level or pin features, through HTTP. */
import { timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest, onRequestHookHandler } from 'fastify'
import { PROBLEM_CONTENT_TYPE, describeValue, optionMessage, problemDetails } from '@spillway/latency-window/core'
import type { Degradation } from './degradation.js'
import { InvalidOverrideError } from './errors.js'
import { digest, type DegradationConfig } from './options.js'

interface AdminBody {
  level?: number | null
  pins?: Record<string, boolean | null>
  ttlMs?: number
  reason?: string
}

/**
 * The token-protected route to read (GET), set (PUT) and clear (DELETE) overrides. A bad body is
 * answered 400 and changes nothing.
 */
export function registerAdmin(fastify: FastifyInstance, state: Degradation, admin: NonNullable<DegradationConfig['admin']>): void {
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
