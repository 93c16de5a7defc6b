import { channel } from 'node:diagnostics_channel'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import {
  EventLoopSignals, PRIORITIES, PRIORITY_RANK, PROBLEM_CONTENT_TYPE, problemDetails, retryAfterSeconds,
  type Priority
} from '@spillway/latency-window'
import { excludeFromLatency, meterFastify, requestStartedAt } from '@spillway/latency-window/fastify'
import type {
  FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, onRequestHookHandler, RouteOptions
} from 'fastify'
import fp from 'fastify-plugin'
import { cohortEpoch, cohortOf } from './cohort.js'
import { LoadShedder, type LoadSheddingMode, type LoadSheddingState, type LoopReading } from './load-shedder.js'
import { checkRoutePriority, normalizeOptions, type LoadSheddingOptions } from './options.js'
import { LoopTurn } from './loop-turn.js'
import { createPriorityResolver } from './priority.js'
import { ADMIT, SHED_DEADLINE, SHED_REASONS, type ShedReason } from './shed-reason.js'

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
export const SHED_CHANNEL = 'spillway:load-shedding:shed'
export const UPDATE_CHANNEL = 'spillway:load-shedding:update'
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

const spillwayLoadShedding: FastifyPluginAsync<LoadSheddingOptions> = async function spillwayLoadShedding(fastify, input) {
  const options = normalizeOptions(input)
  const meter = meterFastify(fastify, NAME)
  const now = meter.now
  const shadow = options.mode === 'shadow'
  const shedder = new LoadShedder({
    limit: options.limit,
    mode: options.mode,
    cohorts: options.cohorts,
    shares: options.shares,
    targetDelayMs: options.targetDelayMs,
    minUtilization: options.minUtilization,
    maxUtilization: options.maxUtilization,
    tightenRatio: options.tightenRatio,
    maxTightenRatio: options.maxTightenRatio,
    relaxRatio: options.relaxRatio,
    maxQueueMs: options.maxQueueMs,
    signals: options.signals
  })

  // Our own sampler, read by the control step itself, rather than the shared meter's: the shared
  // one ticks every 500 ms by default (and the first plugin's options win), too slow to catch a
  // CPU overload before clients time out.
  const delay = monitorEventLoopDelay({ resolution: 5 })
  const eventLoop = new EventLoopSignals({
    intervalMs: options.intervalMs,
    sources: { delay, eventLoopUtilization: performance.eventLoopUtilization.bind(performance), now }
  })
  const idleLoop: LoopReading = { delayP50Ms: 0, delayP99Ms: 0, delayMaxMs: 0, utilization: 0, sampledAt: 0 }
  const NS_PER_MS = 1e6

  function readLoop(elapsedMs: number): LoopReading {
    if (!options.eventLoop) return idleLoop
    // No delay sample at all means the loop was blocked for the whole interval: that is the delay.
    if (delay.count === 0) {
      const reading = eventLoop.sample()
      return { ...reading, delayP50Ms: elapsedMs, delayP99Ms: elapsedMs, delayMaxMs: elapsedMs }
    }
    // The median first: sample() resets the histogram.
    const delayP50Ms = delay.percentile(50) / NS_PER_MS
    return { ...eventLoop.sample(), delayP50Ms }
  }

  const { cohorts, cohortKey, cohortRotateMs, deadlineHeader, statusCode, minRetryAfterMs, maxRetryAfterMs } = options
  let epoch = cohortEpoch(Date.now(), cohortRotateMs)
  let roundRobin = 0
  let lastUpdate = now()

  function update(): LoadSheddingState {
    const at = now()
    const reading = readLoop(at - lastUpdate)
    const pressure = shedder.update(at, at - lastUpdate, reading)
    lastUpdate = at
    // Wall clock, so that every instance of a fleet rotates its cohorts at the same moment.
    epoch = cohortEpoch(Date.now(), cohortRotateMs)
    meter.publishPressure('load-shedding', pressure)
    const state = shedder.state
    if (updateChannel.hasSubscribers) updateChannel.publish(state)
    return state
  }

  let timer: NodeJS.Timeout | undefined
  fastify.addHook('onReady', function startLoadShedding(done) {
    if (options.eventLoop) delay.enable()
    lastUpdate = now()
    timer = setInterval(update, options.intervalMs)
    timer.unref()
    done()
  })
  fastify.addHook('onClose', function stopLoadShedding(_instance, done) {
    clearInterval(timer)
    timer = undefined
    delay.disable()
    done()
  })

  // Precomputed bodies: a refusal serializes nothing.
  const bodies = SHED_REASONS.map((reason) => JSON.stringify(problemDetails(
    statusCode,
    statusCode === 503 ? 'Service Unavailable' : 'Too Many Requests',
    reason === 'deadline'
      ? 'The request arrived after its deadline.'
      : 'The server is overloaded and shed this request; retry after the delay in Retry-After.',
    { reason }
  )))

  function refuse(request: FastifyRequest, reply: FastifyReply, rank: number, reason: number): void {
    excludeFromLatency(request)
    if (shedChannel.hasSubscribers) {
      shedChannel.publish({ request, priority: PRIORITIES[rank] ?? 'normal', reason: SHED_REASONS[reason] ?? 'threshold', shadow: false } satisfies ShedEvent)
    }
    // Jittered ±50% so that refused clients do not all come back in the same second; longer the
    // more is shed, since a deep overload will not clear in a second.
    const baseMs = minRetryAfterMs + shedder.pressure * (maxRetryAfterMs - minRetryAfterMs)
    reply
      .code(statusCode)
      .header('retry-after', retryAfterSeconds(baseMs * (0.5 + Math.random())))
      .header('content-type', PROBLEM_CONTENT_TYPE)
      .send(bodies[reason])
  }

  function noteShadow(request: FastifyRequest, rank: number, reason: number): void {
    if (shedChannel.hasSubscribers) {
      shedChannel.publish({ request, priority: PRIORITIES[rank] ?? 'normal', reason: SHED_REASONS[reason] ?? 'threshold', shadow: true } satisfies ShedEvent)
    }
  }

  function pastDeadline(request: FastifyRequest): boolean {
    const header = request.headers[deadlineHeader as string]
    if (typeof header !== 'string') return false
    const deadline = Number(header)
    return Number.isFinite(deadline) && Date.now() > deadline
  }

  const resolvePriority = createPriorityResolver(options)
  const turn = new LoopTurn()

  function createHook(routeRank: number | undefined): onRequestHookHandler {
    return function spillwayShed(request, reply, done) {
      const rank = routeRank ?? resolvePriority(request)
      if (deadlineHeader !== undefined && pastDeadline(request)) {
        shedder.countShed(rank, SHED_DEADLINE)
        if (!shadow) return refuse(request, reply, rank, SHED_DEADLINE)
        noteShadow(request, rank, SHED_DEADLINE)
      }
      let cohort: number
      const key = cohortKey === undefined ? undefined : cohortKey(request)
      if (typeof key === 'string') cohort = cohortOf(key, epoch, cohorts)
      else cohort = roundRobin = roundRobin + 1 === cohorts ? 0 : roundRobin + 1
      const startedAt = requestStartedAt(request) ?? now()
      const decision = shedder.decide(rank, cohort, turn.elapsed(startedAt))
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
    shedder.release(now() - startedAt, dropped)
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
