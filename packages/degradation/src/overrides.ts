import { describeValue, optionMessage } from '@spillway/latency-window/core'
import { InvalidOverrideError } from './errors.js'
import type { FeatureTable } from './features.js'

/** A wall clock in ms since the epoch: overrides are shared between machines, whose monotonic clocks differ. */
export type WallClock = () => number

export interface ForcedLevel {
  level: number
  /** Epoch ms, or null for no expiry. */
  expiresAt: number | null
  reason?: string
}

export interface FeaturePin {
  on: boolean
  expiresAt: number | null
}

/** Every override, JSON-safe: what the admin route shows and what Redis carries. */
export interface OverrideState {
  level: ForcedLevel | null
  pins: Record<string, FeaturePin>
  /** Epoch ms of the change that produced this state. */
  updatedAt: number
}

export interface OverrideOptions {
  /** Forget the override after this many ms. Default: never. */
  ttlMs?: number
  /** Free text kept with a forced level, shown in status and events. */
  reason?: string
}

export type OverrideChangeSource = 'local' | 'remote' | 'expired'
export type OverrideListener = (state: Readonly<OverrideState>, source: OverrideChangeSource) => void

const NO_PIN = -1

/**
 * What an operator decided, which beats the controller: a forced level, and features pinned on or
 * off, each with an optional expiry. Reads are O(1) (`pinOf` reads a typed array by index).
 */
export class Overrides {
  readonly #features: FeatureTable
  readonly #levels: number
  readonly #wallNow: WallClock
  readonly #pins: Int8Array
  readonly #pinExpiresAt: Float64Array
  #level: ForcedLevel | null = null
  #updatedAt = 0
  readonly #listeners: OverrideListener[] = []

  constructor(features: FeatureTable, levels: number, wallNow: WallClock = Date.now) {
    this.#features = features
    this.#levels = levels
    this.#wallNow = wallNow
    this.#pins = new Int8Array(features.names.length).fill(NO_PIN)
    this.#pinExpiresAt = new Float64Array(features.names.length).fill(Infinity)
  }

  /** The forced level, undefined when the controller decides. */
  get forcedLevel(): number | undefined {
    return this.#level === null ? undefined : this.#level.level
  }

  /** 1 pinned on, 0 pinned off, -1 not pinned. */
  pinOf(index: number): number {
    return this.#pins[index] ?? NO_PIN
  }

  forceLevel(level: number, options: OverrideOptions = {}): void {
    if (typeof level !== 'number' || !Number.isInteger(level) || level < 0 || level > this.#levels) {
      throw new InvalidOverrideError(optionMessage('level', level, `an integer in [0, ${this.#levels}]`))
    }
    const expiresAt = this.#expiry(options)
    this.#level = { level, expiresAt }
    if (options.reason !== undefined) this.#level.reason = String(options.reason).slice(0, 200)
    this.#changed('local')
  }

  clearLevel(): void {
    if (this.#level === null) return
    this.#level = null
    this.#changed('local')
  }

  pin(name: string, on: boolean, options: OverrideOptions = {}): void {
    const index = this.#index(name)
    if (typeof on !== 'boolean') throw new InvalidOverrideError(optionMessage(`pin ${name}`, on, 'true or false'))
    const expiresAt = this.#expiry(options)
    this.#pins[index] = on ? 1 : 0
    this.#pinExpiresAt[index] = expiresAt ?? Infinity
    this.#changed('local')
  }

  unpin(name: string): void {
    const index = this.#index(name)
    if (this.#pins[index] === NO_PIN) return
    this.#pins[index] = NO_PIN
    this.#pinExpiresAt[index] = Infinity
    this.#changed('local')
  }

  /** Drops every override: the controller decides again. */
  clear(): void {
    this.#level = null
    this.#pins.fill(NO_PIN)
    this.#pinExpiresAt.fill(Infinity)
    this.#changed('local')
  }

  /** Drops what has expired; true when anything did. Called by the evaluation timer. */
  expire(): boolean {
    const now = this.#wallNow()
    let changed = false
    if (this.#level !== null && this.#level.expiresAt !== null && this.#level.expiresAt <= now) {
      this.#level = null
      changed = true
    }
    for (let i = 0; i < this.#pins.length; i++) {
      if (this.#pins[i] !== NO_PIN && (this.#pinExpiresAt[i] as number) <= now) {
        this.#pins[i] = NO_PIN
        this.#pinExpiresAt[i] = Infinity
        changed = true
      }
    }
    // Not a new decision: every instance expires the same absolute time on its own, so the version
    // (updatedAt) stays, and a later decision from another instance still supersedes this state.
    if (changed) this.#emit('expired')
    return changed
  }

  snapshot(): OverrideState {
    const pins: Record<string, FeaturePin> = {}
    this.#features.names.forEach((name, i) => {
      const pin = this.#pins[i]
      if (pin === NO_PIN) return
      const expiresAt = this.#pinExpiresAt[i] as number
      pins[name] = { on: pin === 1, expiresAt: expiresAt === Infinity ? null : expiresAt }
    })
    return { level: this.#level === null ? null : { ...this.#level }, pins, updatedAt: this.#updatedAt }
  }

  /**
   * Adopts a state received from elsewhere (another instance through Redis). Older states than the
   * one held are ignored, so a late message cannot undo a newer decision; unknown features and
   * malformed entries are skipped rather than trusted. Returns whether the state was adopted.
   */
  adopt(input: unknown): boolean {
    if (input === null || typeof input !== 'object') return false
    const state = input as Partial<OverrideState>
    const updatedAt = state.updatedAt
    if (typeof updatedAt !== 'number' || !Number.isFinite(updatedAt) || updatedAt <= this.#updatedAt) return false
    const level = state.level
    let forced: ForcedLevel | null = null
    if (level !== null && typeof level === 'object' && Number.isInteger(level.level) &&
        level.level >= 0 && level.level <= this.#levels) {
      forced = { level: level.level, expiresAt: typeof level.expiresAt === 'number' ? level.expiresAt : null }
      if (typeof level.reason === 'string') forced.reason = level.reason.slice(0, 200)
    }
    this.#level = forced
    this.#pins.fill(NO_PIN)
    this.#pinExpiresAt.fill(Infinity)
    const pins = state.pins !== null && typeof state.pins === 'object' ? state.pins : {}
    for (const [name, pin] of Object.entries(pins)) {
      const index = this.#features.indexOf.get(name)
      if (index === undefined || pin === null || typeof pin !== 'object' || typeof pin.on !== 'boolean') continue
      this.#pins[index] = pin.on ? 1 : 0
      this.#pinExpiresAt[index] = typeof pin.expiresAt === 'number' ? pin.expiresAt : Infinity
    }
    this.#updatedAt = updatedAt
    this.#emit('remote')
    this.expire()
    return true
  }

  onChange(listener: OverrideListener): () => void {
    this.#listeners.push(listener)
    return () => {
      const i = this.#listeners.indexOf(listener)
      if (i >= 0) this.#listeners.splice(i, 1)
    }
  }

  #index(name: string): number {
    const index = this.#features.indexOf.get(name)
    if (index === undefined) throw new InvalidOverrideError(`feature ${describeValue(name)} was not declared`)
    return index
  }

  #expiry(options: OverrideOptions): number | null {
    const { ttlMs } = options
    if (ttlMs === undefined) return null
    if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs <= 0) {
      throw new InvalidOverrideError(optionMessage('ttlMs', ttlMs, 'a finite number > 0'))
    }
    return this.#wallNow() + ttlMs
  }

  #changed(source: OverrideChangeSource): void {
    // Past every version this instance has seen (a Lamport clock on wall time): a decision made after
    // adopting another instance's state supersedes it even when this machine's clock is behind.
    this.#updatedAt = Math.max(this.#wallNow(), this.#updatedAt + 1)
    this.#emit(source)
  }

  #emit(source: OverrideChangeSource): void {
    if (this.#listeners.length === 0) return
    const state = this.snapshot()
    for (const listener of [...this.#listeners]) listener(state, source)
  }
}
