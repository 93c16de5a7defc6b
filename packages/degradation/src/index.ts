// The OpenFeature provider is the subpath `@spillway/degradation/openfeature`, so that an application
// not using OpenFeature never loads its SDK.
export { degradation, degradation as default, spillwayDegradation, DEGRADED_HEADER } from './plugin.js'
export type { DegradationOptions, DegradationAdminOptions, CallFallback } from './plugin.js'
export { normalizeDegradationOptions } from './options.js'
export { meterReading } from './meter-reading.js'
export { runRouteFallback } from './route-fallback.js'
export { DegradationOptionsError, InvalidOverrideError, UnknownFeatureError } from './errors.js'
export { declareFeatures, type FeatureDeclaration, type FeatureFallback, type FeatureTable } from './features.js'
export {
  LevelController,
  LOAD_SIGNALS,
  DEFAULT_LEVELS,
  type LevelControllerOptions,
  type LevelThresholds,
  type LevelChange,
  type LoadReading,
  type LoadSignal
} from './level-controller.js'
export {
  Overrides,
  type OverrideState,
  type OverrideOptions,
  type ForcedLevel,
  type FeaturePin,
  type OverrideChangeSource,
  type WallClock
} from './overrides.js'
export {
  Degradation,
  DIAGNOSTICS_CHANNEL,
  type DegradationEvent,
  type DegradationStatus,
  type FeatureStatus
} from './degradation.js'
export { RedisOverrides, type RedisClientLike, type RedisSubscriberLike, type RedisOverridesOptions } from './redis-overrides.js'
