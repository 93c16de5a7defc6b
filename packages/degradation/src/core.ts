/**
 * The framework-free parts of degradation, as the subpath `@spillway/degradation/core`: what the
 * Express middleware (`@spillway/express`) mounts, and what the Fastify plugin mounts. Nothing
 * here imports a framework: the types that meet a request are generic in it.
 */
export { normalizeDegradationOptions, type DegradationConfig, type DegradationOptions, type DegradationAdminOptions } from './options.js'
export {
  normalizeLevelOptions, LOAD_SIGNALS, DEFAULT_LEVELS,
  type LevelControllerOptions, type LevelSettings, type LevelThresholds, type LoadSignal
} from './level-options.js'
export { LevelController, type LevelChange, type LoadReading } from './level-controller.js'
export { declareFeatures, type FeatureDeclaration, type FeatureFallback, type FeatureTable } from './features.js'
export {
  Overrides,
  type OverrideState,
  type OverrideOptions,
  type OverrideListener,
  type ForcedLevel,
  type FeaturePin,
  type OverrideChangeSource,
  type WallClock
} from './overrides.js'
export {
  Degradation,
  DIAGNOSTICS_CHANNEL,
  type DegradationEvent,
  type DegradationListener,
  type DegradationStatus,
  type FeatureStatus
} from './degradation.js'
export { RedisOverrides, type RedisClientLike, type RedisSubscriberLike, type RedisOverridesOptions, type SyncLogger } from './redis-overrides.js'
export { ServerDegradation } from './server-degradation.js'
export { DegradationProtocol, type DegradationMount, type FeatureGate, type CallFallback } from './request-protocol.js'
export { meterReading, readMeter, IDLE_READING } from './meter-reading.js'
export { runRouteFallback } from './route-fallback.js'
export { DegradationOptionsError, InvalidOverrideError, UnknownFeatureError, failOption } from './errors.js'
export { DEGRADED_HEADER } from './header.js'
