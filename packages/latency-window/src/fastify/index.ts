export { meterFastify, excludeFromLatency, replyOf, requestStartedAt } from './measure-requests.js'
