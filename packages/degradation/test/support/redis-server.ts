/**
 * The ioredis client class, resolved from this package's dev dependencies for the root tests, and
 * the shared private redis-server helpers.
 */
export { Redis, type Cluster } from 'ioredis'
export { freePort, startRedisServer, stopRedisServer } from '../../../../test/support/redis-server.js'
