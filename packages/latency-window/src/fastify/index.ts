export { meterFastify, excludeFromLatency, replyOf, requestStartedAt } from './measure-requests.js'
export { addRouteHook, ROUTE_HOOK_ORDER } from './route-hooks.js'
