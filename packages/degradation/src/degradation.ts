import { channel } from 'node:diagnostics_channel'
import { UnknownFeatureError } from './errors.js'
import type { FeatureTable } from './features.js'
import type { LevelChange, LevelController, LoadReading } from './level-controller.js'
import type { LoadSignal } from './level-options.js'
import type { OverrideChangeSource, OverrideState, Overrides } from './overrides.js'
import type { RedisOverrides } from './redis-overrides.js'

/** Name of the `diagnostics_channel` every level change and override is published on. */
export const DIAGNOSTICS_CHANNEL = 'spillway:degradation'

export type DegradationEvent =
  | {
    type: 'level'
    from: number
    to: number
    /** What moved the effective level: a load signal, `recovered`, or `override`. */
    reason: LoadSignal | 'recovered' | 'override'
    /** Load figures at the time (the controller's reading), when a reading was taken. */
    reading: LoadReading | undefined
    value?: number
    threshold?: number
    /** Features that turned off (`off`) or back on (`on`) with this change. */
    off: string[]
    on: string[]
  }
  | { type: 'override'; source: OverrideChangeSource; state: OverrideState }

export type DegradationListener = (event: DegradationEvent) => void

export interface FeatureStatus {
  name: string
  on: boolean
  offAtLevel: number
  /** true/false when pinned by an override, null otherwise. */
  pinned: boolean | null
  fallbacksServed: number
}

export interface DegradationStatus {
  /** The level in force: the forced level if any, else the controller's. */
  level: number
  controllerLevel: number
  forcedLevel: number | null
  levels: number
  /** True when the controller held its level for lack of latency samples. */
  held: boolean
  features: FeatureStatus[]
  overrides: OverrideState
  lastChange: LevelChange | null
  reading: LoadReading | null
  /** Errors met talking to Redis since start; null when overrides are not shared. */
  redisErrors: number | null
}

const events = channel(DIAGNOSTICS_CHANNEL)

/**
 * The degradation state of one server: the controller's level, the overrides that beat it, and
 * per feature whether it is on, kept in a typed array so that asking costs one lookup.
 * Framework-free; the Fastify plugin feeds it readings and asks it questions.
 */
export class Degradation {
  readonly features: FeatureTable
  readonly controller: LevelController
  readonly overrides: Overrides
  readonly #enabled: Uint8Array
  readonly #fallbacksServed: Float64Array
  readonly #listeners: DegradationListener[] = []
  #level = 0
  #lastChange: LevelChange | null = null
  #lastReading: LoadReading | null = null
  /** The Redis sharing of the overrides, when configured. */
  redis: RedisOverrides | undefined

  readonly #read: (() => LoadReading) | undefined

  /** `read` takes a load reading (the plugin reads the shared server meter); `evaluate()` calls it. */
  constructor(features: FeatureTable, controller: LevelController, overrides: Overrides, read?: () => LoadReading) {
    this.#read = read
    this.features = features
    this.controller = controller
    this.overrides = overrides
    this.#enabled = new Uint8Array(features.names.length).fill(1)
    this.#fallbacksServed = new Float64Array(features.names.length)
    overrides.onChange((state, source) => {
      this.#publish({ type: 'override', source, state })
      this.#recompute(undefined)
    })
    this.#recompute(undefined)
  }

  /** The level in force. */
  get level(): number {
    return this.#level
  }

  /** Whether `name` is on. Throws for a feature that was never declared (a typo). */
  isOn(name: string): boolean {
    const index = this.features.indexOf.get(name)
    if (index === undefined) throw new UnknownFeatureError(name)
    return this.#enabled[index] === 1
  }

  /** Whether the feature at `index` (in declaration order) is on. */
  isOnAt(index: number): boolean {
    return this.#enabled[index] === 1
  }

  /** Index of a declared feature, -1 when unknown. */
  indexOf(name: string): number {
    return this.features.indexOf.get(name) ?? -1
  }

  /** Counts one answer served by fallback. */
  recordFallback(index: number): void {
    this.#fallbacksServed[index] = (this.#fallbacksServed[index] ?? 0) + 1
  }

  fallbacksServed(name: string): number {
    const index = this.features.indexOf.get(name)
    if (index === undefined) throw new UnknownFeatureError(name)
    return this.#fallbacksServed[index] ?? 0
  }

  /** Feature names in declaration order. */
  get featureNames(): readonly string[] {
    return this.features.names
  }

  /**
   * Feeds one load reading (by default a fresh one from `read`) to the controller and expires
   * overrides. The plugin calls it every `evaluateIntervalMs`. Returns the controller's change, if any.
   */
  evaluate(input?: LoadReading): LevelChange | undefined {
    const reading = input ?? this.#read?.()
    if (reading === undefined) {
      this.overrides.expire()
      return undefined
    }
    this.#lastReading = reading
    this.overrides.expire()
    const change = this.controller.evaluate(reading)
    if (change !== undefined) {
      this.#lastChange = change
      this.#recompute(change)
    }
    return change
  }

  status(): DegradationStatus {
    const { names, offAtLevel } = this.features
    const forced = this.overrides.forcedLevel
    return {
      level: this.#level,
      controllerLevel: this.controller.level,
      forcedLevel: forced ?? null,
      levels: this.controller.levels,
      held: this.controller.held,
      features: names.map((name, i) => {
        const pin = this.overrides.pinOf(i)
        return {
          name,
          on: this.#enabled[i] === 1,
          offAtLevel: offAtLevel[i] as number,
          pinned: pin === -1 ? null : pin === 1,
          fallbacksServed: this.#fallbacksServed[i] ?? 0
        }
      }),
      overrides: this.overrides.snapshot(),
      lastChange: this.#lastChange,
      reading: this.#lastReading,
      redisErrors: this.redis === undefined ? null : this.redis.errors
    }
  }

  /** Every level change and override; also published on the `spillway:degradation` channel. */
  onEvent(listener: DegradationListener): () => void {
    this.#listeners.push(listener)
    return () => {
      const i = this.#listeners.indexOf(listener)
      if (i >= 0) this.#listeners.splice(i, 1)
    }
  }

  #recompute(change: LevelChange | undefined): void {
    const from = this.#level
    const level = this.overrides.forcedLevel ?? this.controller.level
    const { names, offAtLevel } = this.features
    const off: string[] = []
    const on: string[] = []
    for (let i = 0; i < names.length; i++) {
      const pin = this.overrides.pinOf(i)
      const enabled = pin === -1 ? level < (offAtLevel[i] as number) : pin === 1
      const value = enabled ? 1 : 0
      if (this.#enabled[i] !== value) (enabled ? on : off).push(names[i] as string)
      this.#enabled[i] = value
    }
    this.#level = level
    if (level === from && off.length === 0 && on.length === 0) return
    const fromController = change !== undefined && this.overrides.forcedLevel === undefined
    const event: DegradationEvent = {
      type: 'level',
      from,
      to: level,
      reason: fromController ? change.reason : 'override',
      reading: change?.reading ?? this.#lastReading ?? undefined,
      off,
      on
    }
    if (fromController && change.value !== undefined) event.value = change.value
    if (fromController && change.threshold !== undefined) event.threshold = change.threshold
    this.#publish(event)
  }

  #publish(event: DegradationEvent): void {
    if (events.hasSubscribers) events.publish(event)
    for (const listener of [...this.#listeners]) {
      try {
        listener(event)
      } catch {
        // An observer's bug must not stop the level from changing.
      }
    }
  }
}
