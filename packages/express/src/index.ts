export { degradation, type DegradationMiddleware, type ExpressDegradationOptions, type ExpressFeatureDeclaration, type ExpressFeatureFallback } from './degradation.js'
export { RequestMeter, measureRequests, excludeFromLatency, requestStartedAt, type MeteredRequest } from './request-meter.js'
export { consoleLogger, type SpillwayLogger } from './logger.js'
export { DEGRADED_HEADER } from '@spillway/degradation'
