/**
 * What a refusal costs the server, against answering a hello-world route: every request refused
 * by the hook, or by the front door, side by side with a bare server (shared harness: servers in
 * child processes, modes alternating, median of per-round ratios). Run:
 *   pnpm --filter @spillway/load-shedding bench:refusal      (ROUNDS, SECONDS, CONNECTIONS env)
 */
import { fileURLToPath } from 'node:url'
import { runAlternatingThroughput } from '../../../bench/support/alternating-throughput.js'

await runAlternatingThroughput({
  serverFile: fileURLToPath(new URL('./refusal-server.ts', import.meta.url)),
  modes: ['bare', 'hook', 'front'],
  statuses: [200, 503],
  rounds: Number(process.env.ROUNDS ?? 10),
  seconds: Number(process.env.SECONDS ?? 1),
  connections: Number(process.env.CONNECTIONS ?? 8)
})
