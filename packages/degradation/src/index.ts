// The user API of the Fastify plugin. The framework-free parts (state, controller, overrides, the
// per-request protocol) are the subpath `@spillway/degradation/core`; the OpenFeature provider is
// `@spillway/degradation/openfeature`, so that an application not using OpenFeature never loads its SDK.
export { degradation, degradation as default, spillwayDegradation, DEGRADED_HEADER } from './plugin.js'
export type { DegradationOptions, DegradationAdminOptions, CallFallback, FeatureDeclaration, FeatureFallback } from './plugin.js'
export { DegradationOptionsError, InvalidOverrideError, UnknownFeatureError } from './errors.js'
export { DIAGNOSTICS_CHANNEL } from './degradation.js'
export type { Degradation, DegradationEvent, DegradationListener, DegradationStatus, FeatureStatus } from './degradation.js'
export type { LevelChange, LoadReading } from './level-controller.js'
export type { LevelControllerOptions, LevelThresholds, LoadSignal } from './level-options.js'
export type { OverrideState, OverrideOptions, ForcedLevel, FeaturePin, OverrideChangeSource, WallClock } from './overrides.js'
export type { RedisClientLike, RedisSubscriberLike, RedisOverridesOptions } from './redis-overrides.js'
