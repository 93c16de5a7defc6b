/**
 * Throughput of a hello-world Express route with each middleware, against bare Express, over
 * loopback, with the shared harness (servers in child processes, modes alternating, median of
 * per-round ratios).
 *
 *   pnpm --filter @spillway/express bench      (ROUNDS, SECONDS, CONNECTIONS, MODES env)
 */
import { fileURLToPath } from 'node:url'
import { runAlternatingThroughput } from '../../../bench/support/alternating-throughput.js'

const ALL_MODES = ['bare', 'noop-middleware', 'meter-only', 'rate-limit', 'express-rate-limit', 'load-shedding', 'degradation', 'all-three']
const modes = process.env.MODES === undefined
  ? ALL_MODES
  : ['bare', ...process.env.MODES.split(',').filter((m) => m !== 'bare' && ALL_MODES.includes(m))]

await runAlternatingThroughput({
  serverFile: fileURLToPath(new URL('./server.ts', import.meta.url)),
  modes,
  rounds: Number(process.env.ROUNDS ?? 20),
  seconds: Number(process.env.SECONDS ?? 1),
  connections: Number(process.env.CONNECTIONS ?? 8)
})
