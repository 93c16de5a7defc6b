export { meterFastify, excludeFromLatency, requestStartedAt } from './measure-requests.js'
