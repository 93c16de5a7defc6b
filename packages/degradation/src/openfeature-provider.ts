import {
  FlagNotFoundError,
  OpenFeatureEventEmitter,
  ProviderEvents,
  TypeMismatchError,
  type JsonValue,
  type Provider,
  type ResolutionDetails
} from '@openfeature/server-sdk'
import { checkKnownKeys, checkOptionsObject } from '@spillway/latency-window/core'
import type { Degradation } from './degradation.js'
import { failOption } from './errors.js'

export interface DegradationProviderOptions {
  /**
   * Answer only while a feature is off, and `FLAG_NOT_FOUND` while it is on, so that in a
   * `MultiProvider` (first-match strategy, this provider first) the vendor's provider decides
   * whenever load does not. Default false: this provider answers on and off.
   */
  deferWhenOn?: boolean
}

/** Reason reported while a feature is off because of load or an override. */
export const DEGRADED_REASON = 'DEGRADED'

/**
 * An OpenFeature server provider answering the declared features as boolean flags: true while on,
 * false while degraded. The answer is computed locally from the level (no network), so a flag
 * service being down never disables degradation. Emits `ConfigurationChanged` when features turn
 * off or back on, so OpenFeature clients listening for changes see them at once.
 */
export class DegradationProvider implements Provider {
  readonly metadata = { name: 'spillway-degradation' } as const
  readonly runsOn = 'server' as const
  readonly hooks = []
  readonly events = new OpenFeatureEventEmitter()
  readonly #source: Degradation
  readonly #deferWhenOn: boolean
  #unlisten: (() => void) | undefined

  constructor(source: Degradation, options: DegradationProviderOptions = {}) {
    this.#source = source
    checkKnownKeys('', checkOptionsObject('options', options, failOption), ['deferWhenOn'], failOption)
    this.#deferWhenOn = options.deferWhenOn ?? false
    this.#unlisten = source.onEvent((event) => {
      if (event.type !== 'level' || event.on.length + event.off.length === 0) return
      this.events.emit(ProviderEvents.ConfigurationChanged, {
        flagsChanged: [...event.off, ...event.on],
        metadata: { level: event.to, reason: event.reason }
      })
    })
  }

  async onClose(): Promise<void> {
    this.#unlisten?.()
    this.#unlisten = undefined
  }

  async resolveBooleanEvaluation(flagKey: string, _defaultValue: boolean): Promise<ResolutionDetails<boolean>> {
    const index = this.#source.indexOf(flagKey)
    if (index < 0) throw new FlagNotFoundError(`${flagKey} is not a feature declared to spillway degradation`)
    const on = this.#source.isOnAt(index)
    if (on && this.#deferWhenOn) throw new FlagNotFoundError(`${flagKey} is not degraded; deferring to the next provider`)
    return {
      value: on,
      variant: on ? 'on' : 'off',
      reason: on ? 'STATIC' : DEGRADED_REASON,
      flagMetadata: { level: this.#source.level }
    }
  }

  async resolveStringEvaluation(flagKey: string): Promise<ResolutionDetails<string>> {
    return this.#notBoolean(flagKey)
  }

  async resolveNumberEvaluation(flagKey: string): Promise<ResolutionDetails<number>> {
    return this.#notBoolean(flagKey)
  }

  async resolveObjectEvaluation<T extends JsonValue>(flagKey: string): Promise<ResolutionDetails<T>> {
    return this.#notBoolean(flagKey)
  }

  #notBoolean(flagKey: string): never {
    if (this.#source.indexOf(flagKey) < 0) throw new FlagNotFoundError(`${flagKey} is not a feature declared to spillway degradation`)
    throw new TypeMismatchError(`${flagKey} is a boolean flag`)
  }
}
