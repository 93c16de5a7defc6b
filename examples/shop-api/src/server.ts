/**
 * Runs the shop API. Standalone: `pnpm --filter @spillway/shop-api start` (PORT, default 3000;
 * PROTECTION=off for the unprotected baseline; REDIS_URL to share limits and overrides;
 * ADMIN_TOKEN for the degradation admin route). Forked by the demo (with an IPC channel): listens
 * on a free port, reports it to the parent, obeys `{ type: 'slowdown', factor }` messages, and
 * exits when the parent goes away, so a crashed demo never leaves a server behind.
 */
import { calibrateCpuWork } from '@spillway/overload-bench/scenario-app'
import { createShopApp } from './app.js'

export type ServerMessage = { type: 'slowdown', factor: number }

const forked = process.send !== undefined
const iterations = Number(process.env.CPU_ITERATIONS_PER_MS ?? Number.NaN)
const app = await createShopApp({
  protection: process.env.PROTECTION !== 'off',
  cpuIterationsPerMs: Number.isFinite(iterations) && iterations > 0 ? iterations : calibrateCpuWork(1),
  ...(process.env.REDIS_URL === undefined ? {} : { redisUrl: process.env.REDIS_URL }),
  ...(process.env.REDIS_PREFIX === undefined ? {} : { redisPrefix: process.env.REDIS_PREFIX }),
  ...(process.env.ADMIN_TOKEN === undefined ? {} : { adminToken: process.env.ADMIN_TOKEN }),
  logger: !forked
})
// A generous accept backlog, the same for both demo targets, so that neither loses requests to SYN drops.
await app.listen({ port: forked ? 0 : Number(process.env.PORT ?? 3000), host: process.env.HOST ?? '127.0.0.1', backlog: 2048 })

const stop = (): void => { void app.close().finally(() => process.exit(0)) }
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
if (forked) {
  const address = app.server.address()
  process.send?.({ port: typeof address === 'object' && address !== null ? address.port : 0 })
  process.on('disconnect', stop)
  process.on('message', (message: ServerMessage) => {
    if (message.type === 'slowdown') app.shopDatabase.slowdown = message.factor
  })
}
