/**
 * Throughput of a hello-world route with the plugin, against bare Fastify, over loopback, with the
 * shared harness (servers in child processes, modes alternating, median of per-round ratios).
 *
 *   pnpm --filter @spillway/degradation bench:throughput      (ROUNDS, SECONDS, CONNECTIONS env)
 */
import { fileURLToPath } from 'node:url'
import { runAlternatingThroughput } from '../../../bench/support/alternating-throughput.js'

await runAlternatingThroughput({
  serverFile: fileURLToPath(new URL('./server.ts', import.meta.url)),
  modes: ['bare', 'meter-only', 'plugin', 'plugin-feature', 'plugin-no-header'],
  rounds: Number(process.env.ROUNDS ?? 20),
  seconds: Number(process.env.SECONDS ?? 1),
  connections: Number(process.env.CONNECTIONS ?? 8)
})
