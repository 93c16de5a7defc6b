import { channel } from 'node:diagnostics_channel'
import { PRIORITIES, PRIORITY_RANK, PROBLEM_CONTENT_TYPE, type Priority } from '@spillway/latency-window'
import { excludeFromLatency, meterFastify, requestStartedAt } from '@spillway/latency-window/fastify'
import type {
  FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, onRequestHookHandler, RouteOptions
} from 'fastify'
import fp from 'fastify-plugin'
import type { LoadShedder, LoadSheddingMode, LoadSheddingState } from './load-shedder.js'
import { checkRoutePriority, normalizeOptions, type LoadSheddingOptions } from './options.js'
import { createPriorityResolver } from './priority.js'
import { ShedGate } from './shed-gate.js'
import { SHED_CHANNEL, UPDATE_CHANNEL } from './channels.js'
import { ADMIT, QUEUED, SHED_DEADLINE, SHED_REASONS, type ShedReason } from './shed-reason.js'

/** What `fastify.loadShedding` exposes. */
export interface LoadSheddingHandle {
  readonly mode: LoadSheddingMode
  /** The live state (a fresh copy on every read). */
  readonly state: LoadSheddingState
  /** 0–1, as published on the shared meter. */
  readonly pressure: number
  /** Runs one control step now (tests, or a caller that drives the controller itself). */
  update(): LoadSheddingState
  /** The framework-free controller. */
  readonly shedder: LoadShedder
}

declare module 'fastify' {
  interface FastifyInstance {
    loadShedding: LoadSheddingHandle
  }
  interface FastifyContextConfig {
    /** The priority of every request to this route (`critical`, `high`, `normal`, `low`). */
    priority?: Priority
    /** `false`: this route is never shed (health checks). */
    loadShedding?: boolean
  }
}

/** `diagnostics_channel` events: one per refused request, one per control step. */
export { SHED_CHANNEL, UPDATE_CHANNEL }
const shedChannel = channel(SHED_CHANNEL)
const updateChannel = channel(UPDATE_CHANNEL)

export interface ShedEvent {
  request: FastifyRequest
  priority: Priority
  reason: ShedReason
  /** True in shadow mode: counted, not refused. */
  shadow: boolean
}

// When an admitted request started (the meter's clock), cleared when it is released; the shared
// meter clears its own start time in its onResponse hook, which runs before ours.
const kAdmittedAt = Symbol('spillway.loadShedding.admittedAt')
interface AdmittedRequest { [kAdmittedAt]?: number | undefined }

const NAME = '@spillway/load-shedding'

/** A request waiting in the run queue, with the hook's callback that lets it go on. */
interface WaitingRequest {
  request: FastifyRequest
  reply: FastifyReply
  done: () => void
}

const spillwayLoadShedding: FastifyPluginAsync<LoadSheddingOptions> = async function spillwayLoadShedding(fastify, input) {
  const options = normalizeOptions(input)
  const meter = meterFastify(fastify, NAME)
  const now = meter.now
  const shadow = options.mode === 'shadow'
  const gate = new ShedGate<WaitingRequest>(options, {
    now,
    publishPressure: (pressure) => meter.publishPressure('load-shedding', pressure),
    onUpdate: (state) => { if (updateChannel.hasSubscribers) updateChannel.publish(state) },
    queued: {
      run(waiting) {
        // Its time in flight starts now: the wait is the queue's, not the dependency's.
        ;(waiting.request as AdmittedRequest)[kAdmittedAt] = now()
        waiting.done()
      },
      refuse: (waiting, rank, reason) => refuse(waiting.request, waiting.reply, rank, reason),
      gone: (waiting) => waiting.request.raw.socket.destroyed
    }
  })
  const { shedder } = gate
  const update = (): LoadSheddingState => gate.update()

  fastify.addHook('onReady', function startLoadShedding(done) {
    gate.start()
    done()
  })
  fastify.addHook('onClose', function stopLoadShedding(_instance, done) {
    gate.stop()
    done()
  })

  const { cohortKey, deadlineHeader, statusCode } = options

  function refuse(request: FastifyRequest, reply: FastifyReply, rank: number, reason: number): void {
    excludeFromLatency(request)
    if (shedChannel.hasSubscribers) {
      shedChannel.publish({ request, priority: PRIORITIES[rank] ?? 'normal', reason: SHED_REASONS[reason] ?? 'threshold', shadow: false } satisfies ShedEvent)
    }
    reply
      .code(statusCode)
      .header('retry-after', gate.retryAfterSeconds())
      .header('content-type', PROBLEM_CONTENT_TYPE)
      .send(gate.body(reason))
  }

  function noteShadow(request: FastifyRequest, rank: number, reason: number): void {
    if (shedChannel.hasSubscribers) {
      shedChannel.publish({ request, priority: PRIORITIES[rank] ?? 'normal', reason: SHED_REASONS[reason] ?? 'threshold', shadow: true } satisfies ShedEvent)
    }
  }

  const resolvePriority = createPriorityResolver(options)

  function createHook(routeRank: number | undefined): onRequestHookHandler {
    return function spillwayShed(request, reply, done) {
      const rank = routeRank ?? resolvePriority(request)
      if (deadlineHeader !== undefined && gate.pastDeadline(request.headers[deadlineHeader])) {
        shedder.countShed(rank, SHED_DEADLINE)
        if (!shadow) return refuse(request, reply, rank, SHED_DEADLINE)
        noteShadow(request, rank, SHED_DEADLINE)
      }
      const cohort = gate.cohort(cohortKey === undefined ? undefined : cohortKey(request))
      const startedAt = requestStartedAt(request) ?? now()
      const decision = gate.admit(rank, cohort, startedAt)
      if (decision === QUEUED) {
        const queued = gate.enqueue(rank, startedAt, { request, reply, done })
        if (queued !== QUEUED) refuse(request, reply, rank, queued)
        return
      }
      if (decision !== ADMIT) {
        if (!shadow) return refuse(request, reply, rank, decision)
        noteShadow(request, rank, decision)
      }
      ;(request as AdmittedRequest)[kAdmittedAt] = startedAt
      done()
    }
  }

  function release(request: FastifyRequest, dropped: boolean): void {
    const admitted = request as AdmittedRequest
    const startedAt = admitted[kAdmittedAt]
    if (startedAt === undefined) return
    admitted[kAdmittedAt] = undefined
    gate.release(now() - startedAt, dropped)
  }

  fastify.addHook('onResponse', function spillwayRelease(request, reply, done) {
    release(request, reply.statusCode >= 500)
    done()
  })
  // A client that gives up is a loss signal (AIMD backs off), and must not leak its slot.
  fastify.addHook('onRequestAbort', function spillwayAbort(request, done) {
    release(request, true)
    done()
  })

  fastify.addHook('onRoute', function spillwayRoute(route: RouteOptions) {
    const config = route.config
    if (config?.loadShedding === false || options.bypass.has(route.url)) return
    const priority = checkRoutePriority(route.url, config?.priority)
    const hook = createHook(priority === undefined ? undefined : PRIORITY_RANK[priority])
    const existing = route.onRequest
    route.onRequest = existing === undefined ? [hook] : [hook, ...(Array.isArray(existing) ? existing : [existing])]
  })

  const handle: LoadSheddingHandle = {
    mode: options.mode,
    get state() { return shedder.state },
    get pressure() { return shedder.pressure },
    update,
    shedder
  }
  fastify.decorate('loadShedding', handle)

  if (options.statusRoute !== undefined) {
    fastify.get(options.statusRoute, { config: { loadShedding: false } }, async function loadSheddingStatus() {
      return shedder.state
    })
  }
}

export const loadShedding = fp(spillwayLoadShedding, { name: NAME, fastify: '5.x' })
export { spillwayLoadShedding }
export type { FastifyInstance }
