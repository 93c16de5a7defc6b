export { meterFastify, excludeFromLatency, replyOf, requestStartedAt } from './measure-requests.js'
export { addRouteHook } from './route-hooks.js'
