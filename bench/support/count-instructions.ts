/**
 * Instructions per request of a benchmark server's modes, counted by callgrind (see
 * `instruction-count.ts`). The packages' `bench:instructions` scripts run it:
 *
 *   tsx bench/support/count-instructions.ts <server file> <mode,mode,...> [statuses]
 *
 * The first mode is the baseline. `statuses`: answers that count as served (default 200).
 * Env: MODES (replaces the list), WARMUP (requests, 10000), REQUESTS (per window, 4000), WINDOWS (7).
 */
import { resolve } from 'node:path'
import { runInstructionCount } from './instruction-count.js'

const [serverFile, modes, statuses] = process.argv.slice(2)
if (serverFile === undefined || modes === undefined) {
  console.error('usage: count-instructions.ts <server file> <mode,mode,...> [statuses]')
  process.exit(2)
}
await runInstructionCount({
  serverFile: resolve(serverFile),
  modes: (process.env.MODES ?? modes).split(','),
  warmupRequests: Number(process.env.WARMUP ?? 10_000),
  windowRequests: Number(process.env.REQUESTS ?? 4000),
  windows: Number(process.env.WINDOWS ?? 7),
  connections: 4,
  statuses: (statuses ?? '200').split(',').map(Number)
})
