import {
  PRIORITIES, PRIORITY_RANK, checkBoolean, checkFunction, checkKnownKeys, checkNumber, checkOneOf, checkOptionsObject, describeValue,
  isPriority, normalizeRefusalPacing, optionMessage, type Priority, type RefusalPacingOptions, type RefusalPacingSettings
} from '@spillway/latency-window/core'
import type { IncomingMessage } from 'node:http'
import type { AimdLimitOptions } from './aimd-limit.js'
import { failOption } from './errors.js'
import type { Gradient2LimitOptions } from './gradient2-limit.js'
import type { LimitAlgorithm } from './limit-algorithm.js'
import { MIGRATION_HINTS } from './migration-hints.js'
import { checkFront, checkHeaderName, checkLimit, checkQueue } from './nested-options.js'
import type { LoadSheddingMode } from './shedding-state.js'
import type { LoadSignal } from './user-signals-detector.js'

/**
 * The options, generic in the framework's request (`Req`) that `cohortKey` and `priority` read:
 * Fastify's in `@spillway/load-shedding`, Express's in `@spillway/express`.
 */
export interface SheddingOptions<Req> {
  /** `enforce` refuses; `shadow` decides and counts but refuses nothing. Default `enforce`. */
  mode?: LoadSheddingMode
  /** Concurrency-limit algorithm: `gradient2`, `aimd`, or your own `LimitAlgorithm`. Default `gradient2`. */
  algorithm?: 'gradient2' | 'aimd' | LimitAlgorithm
  gradient2?: Gradient2LimitOptions
  aimd?: AimdLimitOptions
  /** Share of the concurrency limit each priority may fill. Default `{ critical: 2, high: 1.25, normal: 1, low: 0.8 }`. */
  shares?: Partial<Record<Priority, number>>
  /** Control interval: signals are read and the threshold and limit move this often, ms. Default 100. */
  intervalMs?: number
  /** Median event-loop delay in an interval that counts as overload, ms. Default 25. */
  targetDelayMs?: number
  /** The delay counts only when the loop was at least this busy in the interval. Default 0.8. */
  minUtilization?: number
  /** Utilization (smoothed over two intervals) that counts as overload whatever the delay. Default 0.95. */
  maxUtilization?: number
  /** Read the event loop at all (turn off for a service whose loop you do not want to act on). Default true. */
  eventLoop?: boolean
  /**
   * Longest a request may have waited unread in its socket (how far into a loop turn it is read)
   * before it is shed at once, per priority, ms. Default `{ high: 3, normal: 2, low: 1 } × targetDelayMs`;
   * `critical` is never shed for it.
   */
  maxQueueMs?: Partial<Record<Exclude<Priority, 'critical'>, number>>
  /**
   * The run queue (see the README): once a loop turn has run `turnBudgetMs` of admitted work,
   * further requests wait in the process, most important first, instead of unread in their
   * sockets; one that waits past its priority's `maxQueueMs` is refused. `headroom`: while the
   * queue refuses work, the threshold admits the served rate plus this share. `false` turns it off.
   * Default `{ turnBudgetMs: 5, maxLength: 10000, headroom: 0.5 }`.
   */
  queue?: false | { turnBudgetMs?: number, maxLength?: number, headroom?: number }
  /**
   * The front door: decide requests to static routes before Fastify builds its request (the
   * server's request listener is wrapped at `onReady`), so that a refusal costs Node's parsing and
   * a precomputed 503 only. `cohortKey` reads Node's request there. Other requests are decided by
   * the hook as usual. Default false.
   */
  front?: boolean | { cohortKey?: (request: IncomingMessage) => string | undefined }
  /** Least share of admitted traffic cut per overloaded interval. Default 0.1. */
  tightenRatio?: number
  /** Most share cut per interval. Default 0.5. */
  maxTightenRatio?: number
  /** Share of admitted traffic re-admitted per calm interval. Default 0.05. */
  relaxRatio?: number
  /** Cohorts per priority. Default 128. */
  cohorts?: number
  /** The user or tenant key a request's cohort is hashed from; without it requests are dealt round-robin. */
  cohortKey?: (request: Req) => string | undefined
  /** Cohorts are re-drawn (hash re-salted) this often, on the wall clock so every instance agrees, ms. Default 3 600 000. */
  cohortRotateMs?: number
  /** Priority of a request nothing else names. Default `normal`. */
  defaultPriority?: Priority
  /** Priority from the request, when the route's config names none. */
  priority?: (request: Req) => Priority | undefined
  /** A request header to read the priority from — only set it when a trusted proxy sets that header. Default none. */
  priorityHeader?: string
  /** Route URLs (as registered, e.g. `/health`) never shed. Default `[]`. */
  bypass?: readonly string[]
  /** 503 (default) or 429. */
  statusCode?: 503 | 429
  /** Retry-After range: `min` when barely shedding, `max` when shedding everything, jittered ±50%, ms. Default 1000 / 10000. */
  retryAfterMs?: { min?: number, max?: number }
  /**
   * Refusal pacing (see the README): once a connection has been refused `afterRefusals` times in a
   * row, each time back within a second, its next refusals are held (about as long as its run of
   * refusals has lasted, `minDelayMs`–`maxDelayMs`), so that clients that retry at once cannot
   * spend the CPU on refusals. At most `maxHeld` are held; `false` turns it off.
   * Default `{ afterRefusals: 3, afterMs: 0, minDelayMs: 250, maxDelayMs: 750, maxHeld: 10000 }`.
   */
  pacing?: boolean | RefusalPacingOptions
  /** A header carrying the client's absolute deadline (Unix epoch ms); a request read after it is dropped. Default none. */
  deadlineHeader?: string
  /** User signals: ratios where ≥ 1 means overloaded (heap, pool wait…). Default none. */
  signals?: Record<string, LoadSignal>
  /** Path of a GET route reporting the state as JSON, or false. Default false. */
  statusRoute?: string | false
}

/** The options as checked and defaulted once, at registration: what every part takes as it is. */
export interface LoadSheddingConfig<Req> {
  mode: LoadSheddingMode
  limit: LimitAlgorithm
  shares: number[]
  intervalMs: number
  targetDelayMs: number
  minUtilization: number
  maxUtilization: number
  eventLoop: boolean
  maxQueueMs: number[]
  queue: { turnBudgetMs: number, maxLength: number, headroom: number } | undefined
  front: { cohortKey: ((request: IncomingMessage) => string | undefined) | undefined } | undefined
  tightenRatio: number
  maxTightenRatio: number
  relaxRatio: number
  cohorts: number
  cohortKey: ((request: Req) => string | undefined) | undefined
  cohortRotateMs: number
  defaultRank: number
  priority: ((request: Req) => Priority | undefined) | undefined
  priorityHeader: string | undefined
  bypass: ReadonlySet<string>
  statusCode: 503 | 429
  minRetryAfterMs: number
  maxRetryAfterMs: number
  pacing: RefusalPacingSettings | undefined
  deadlineHeader: string | undefined
  signals: Record<string, LoadSignal>
  statusRoute: string | undefined
}

const DEFAULT_SHARES: Readonly<Record<Priority, number>> = { critical: 2, high: 1.25, normal: 1, low: 0.8 }

// `satisfies`: an option added to the interface and not here (or the other way round) fails the build.
const OPTIONS = Object.keys({
  mode: true, algorithm: true, gradient2: true, aimd: true, shares: true, intervalMs: true, targetDelayMs: true, minUtilization: true,
  maxUtilization: true, eventLoop: true, maxQueueMs: true, queue: true, front: true, tightenRatio: true, maxTightenRatio: true,
  relaxRatio: true, cohorts: true, cohortKey: true, cohortRotateMs: true, defaultPriority: true, priority: true, priorityHeader: true,
  bypass: true, statusCode: true, retryAfterMs: true, pacing: true, deadlineHeader: true, signals: true, statusRoute: true
} satisfies Record<keyof SheddingOptions<unknown>, true>)
const RETRY_AFTER_OPTIONS = Object.keys({ min: true, max: true } satisfies Record<keyof NonNullable<SheddingOptions<unknown>['retryAfterMs']>, true>)
const QUEUED_PRIORITIES = Object.keys({ high: true, normal: true, low: true } satisfies Record<keyof NonNullable<SheddingOptions<unknown>['maxQueueMs']>, true>)

/**
 * Validates every option once, at registration; a bad one throws `SPILLWAY_LOAD_SHEDDING_OPTIONS`.
 * `mountOptions`: the names a mount adds to the options and reads itself.
 */
export function normalizeOptions<Req>(input: unknown, mountOptions: readonly string[] = []): Readonly<LoadSheddingConfig<Req>> {
  const options = checkOptionsObject<SheddingOptions<Req>>('options', input, failOption)
  checkKnownKeys('', options, mountOptions.length === 0 ? OPTIONS : [...OPTIONS, ...mountOptions], failOption, MIGRATION_HINTS)
  const sharesInput = checkOptionsObject<Record<Priority, number>>('shares', options.shares, failOption)
  checkKnownKeys('shares', sharesInput, PRIORITIES, failOption)
  const shares = PRIORITIES.map((priority) =>
    checkNumber(`shares.${priority}`, sharesInput[priority] ?? DEFAULT_SHARES[priority], { min: 0.01, max: 100, fail: failOption }))
  const retry = checkOptionsObject<{ min: number, max: number }>('retryAfterMs', options.retryAfterMs, failOption)
  checkKnownKeys('retryAfterMs', retry, RETRY_AFTER_OPTIONS, failOption)
  const minRetryAfterMs = checkNumber('retryAfterMs.min', retry.min ?? 1000, { min: 0, fail: failOption })
  const maxRetryAfterMs = checkNumber('retryAfterMs.max', retry.max ?? Math.max(10_000, minRetryAfterMs),
    { min: minRetryAfterMs, fail: failOption })
  const bypass = options.bypass ?? []
  if (!Array.isArray(bypass) || bypass.some((url) => typeof url !== 'string')) {
    throw failOption(optionMessage('bypass', bypass, 'an array of route URLs'))
  }
  const signals = checkOptionsObject<Record<string, LoadSignal>>('signals', options.signals, failOption)
  const checkedSignals: Record<string, LoadSignal> = {}
  for (const [name, fn] of Object.entries(signals)) checkedSignals[name] = checkFunction<LoadSignal>(`signals.${name}`, fn, failOption)
  const statusRoute = options.statusRoute ?? false
  if (statusRoute !== false && (typeof statusRoute !== 'string' || !statusRoute.startsWith('/'))) {
    throw failOption(optionMessage('statusRoute', statusRoute, 'a path starting with "/" or false'))
  }
  const statusCode = options.statusCode ?? 503
  if (statusCode !== 503 && statusCode !== 429) throw failOption(optionMessage('statusCode', statusCode, '503 or 429'))
  const defaultPriority = options.defaultPriority ?? 'normal'
  if (!isPriority(defaultPriority)) {
    throw failOption(optionMessage('defaultPriority', defaultPriority, `one of ${PRIORITIES.join(', ')}`))
  }
  const targetDelayMs = checkNumber('targetDelayMs', options.targetDelayMs ?? 25, { min: 1, max: 60_000, fail: failOption })
  const queueInput = checkOptionsObject<Record<string, number>>('maxQueueMs', options.maxQueueMs, failOption)
  // `critical` is never shed for waiting: it has no maximum to set.
  checkKnownKeys('maxQueueMs', queueInput, QUEUED_PRIORITIES, failOption)
  const maxQueueMs = [
    Number.POSITIVE_INFINITY,
    checkNumber('maxQueueMs.high', queueInput.high ?? 3 * targetDelayMs, { min: 0, fail: failOption }),
    checkNumber('maxQueueMs.normal', queueInput.normal ?? 2 * targetDelayMs, { min: 0, fail: failOption }),
    checkNumber('maxQueueMs.low', queueInput.low ?? targetDelayMs, { min: 0, fail: failOption })
  ]
  const queue = checkQueue(options.queue)
  const front = checkFront(options.front)
  const tightenRatio = checkNumber('tightenRatio', options.tightenRatio ?? 0.1, { min: 0.001, max: 0.99, fail: failOption })
  return Object.freeze({
    mode: checkOneOf('mode', options.mode ?? 'enforce', ['enforce', 'shadow'], failOption),
    limit: checkLimit(options),
    shares,
    intervalMs: checkNumber('intervalMs', options.intervalMs ?? 100, { min: 10, max: 60_000, fail: failOption }),
    targetDelayMs,
    maxQueueMs,
    queue,
    front,
    minUtilization: checkNumber('minUtilization', options.minUtilization ?? 0.8, { min: 0, max: 1, fail: failOption }),
    maxUtilization: checkNumber('maxUtilization', options.maxUtilization ?? 0.95, { min: 0.01, max: 1.01, fail: failOption }),
    eventLoop: checkBoolean('eventLoop', options.eventLoop ?? true, failOption),
    tightenRatio,
    maxTightenRatio: checkNumber('maxTightenRatio', options.maxTightenRatio ?? Math.max(0.5, tightenRatio),
      { min: tightenRatio, max: 0.99, fail: failOption }),
    relaxRatio: checkNumber('relaxRatio', options.relaxRatio ?? 0.05, { min: 0.001, max: 10, fail: failOption }),
    cohorts: checkNumber('cohorts', options.cohorts ?? 128, { min: 1, max: 4096, integer: true, fail: failOption }),
    cohortKey: options.cohortKey === undefined
      ? undefined
      : checkFunction<(request: Req) => string | undefined>('cohortKey', options.cohortKey, failOption),
    cohortRotateMs: checkNumber('cohortRotateMs', options.cohortRotateMs ?? 3_600_000, { min: 1000, fail: failOption }),
    defaultRank: PRIORITY_RANK[defaultPriority],
    priority: options.priority === undefined
      ? undefined
      : checkFunction<(request: Req) => Priority | undefined>('priority', options.priority, failOption),
    priorityHeader: checkHeaderName('priorityHeader', options.priorityHeader),
    bypass: new Set(bypass),
    statusCode,
    minRetryAfterMs,
    maxRetryAfterMs,
    pacing: normalizeRefusalPacing('pacing', options.pacing, failOption),
    deadlineHeader: checkHeaderName('deadlineHeader', options.deadlineHeader),
    signals: checkedSignals,
    statusRoute: statusRoute === false ? undefined : statusRoute
  })
}

/** A route's `config.priority`, checked when the route is added. */
export function checkRoutePriority(url: string, value: unknown): Priority | undefined {
  if (value === undefined) return undefined
  if (!isPriority(value)) {
    throw failOption(`route ${url}: config.priority must be one of ${PRIORITIES.join(', ')}, got ${describeValue(value)}`)
  }
  return value
}
