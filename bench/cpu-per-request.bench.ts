/**
 * Server CPU time per request of a hello-world Fastify route, bare and behind each Spillway
 * plugin, side by side in one run: `pnpm bench:cost`, the first part of `pnpm bench`.
 *
 * Time, not requests per second: on a machine whose cores are shared, req/s moves with whatever
 * else runs, while the CPU time the server spends per request moves much less. So the server is
 * pinned to core 0 and this process (the load) to core 1; each measurement gets a fresh server
 * process (nothing a target left in V8's feedback or heap carries over), warmed up under the same
 * load first, then measured over an interval inside one continuous load: the server's own CPU time
 * (`process.cpuUsage()`, every thread of it, read over IPC) over the requests answered meanwhile.
 * The targets rotate within each round, and each is compared with bare Fastify measured in the
 * same round; the median of those per-round ratios is the verdict (single rounds spread by several
 * points). Ratio = bare's CPU per request ÷ the target's: 90% means the target costs 11% more.
 *
 * The floors show what part of a plugin's cost is any hook's (`noop-hook`) and what part is any
 * two header fields' (`two-headers`: the two RateLimit fields, constant, set by an empty hook).
 * Each plugin runs with its defaults and refuses nothing (the targets are in
 * `packages/rate-limit/bench/server.ts`): the rate limiter's limits are out of reach, and the load
 * shedder is kept from reading a server that answers as fast as it can as overloaded (see there).
 * A server is measured once it has answered a whole second without a refusal, and a measurement
 * with a refusal in it is made again.
 *
 * Env: BENCH_ROUNDS (7), BENCH_SECONDS (3, measured per server), BENCH_WARMUP_S (2, at least 1),
 * BENCH_CONNECTIONS (50), BENCH_TARGETS (a comma-separated subset; bare always runs),
 * BENCH_INSTRUCTIONS=1 adds instructions per request, counted by callgrind (needs valgrind;
 * about 2 minutes per target: `bench/support/instruction-count.ts`).
 *
 * Take `flock /tmp/spillway-bench.lock` around it (the package script does): the machine's other
 * benchmarks and tests must not run meanwhile.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { availableParallelism, cpus, loadavg } from 'node:os'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { keepAliveConnection, type LoadCounts } from './support/closed-loop-client.js'
import { countInstructions } from './support/instruction-count.js'

const TARGETS = {
  'bare': 'bare Fastify',
  'noop-hook': 'empty `onRequest` hook (floor)',
  'two-headers': 'empty hook writing the two RateLimit fields (floor)',
  'ours-memory': '**@spillway/rate-limit** (memory, headers on)',
  'fastify-rate-limit': '`@fastify/rate-limit` (memory)',
  'load-shedding': '**@spillway/load-shedding**',
  'degradation': '**@spillway/degradation** (one feature)',
  'all-three': '**all three** of ours'
} as const
type Target = keyof typeof TARGETS

const env = process.env
const ROUNDS = Number(env.BENCH_ROUNDS ?? 7)
const SECONDS = Number(env.BENCH_SECONDS ?? 3)
const WARMUP_S = Math.max(1, Number(env.BENCH_WARMUP_S ?? 2))
const CONNECTIONS = Number(env.BENCH_CONNECTIONS ?? 50)
const INSTRUCTIONS = env.BENCH_INSTRUCTIONS === '1'
const targets: Target[] = ['bare', ...((env.BENCH_TARGETS?.split(',') ?? Object.keys(TARGETS)) as Target[]).filter((t) => t !== 'bare')]
for (const target of targets) if (!(target in TARGETS)) throw new Error(`unknown target ${target}; known: ${Object.keys(TARGETS).join(', ')}`)

const rateLimitDir = fileURLToPath(new URL('../packages/rate-limit/', import.meta.url))
const serverFile = fileURLToPath(new URL('../packages/rate-limit/bench/server.ts', import.meta.url))
const STATUSES = ['200']
const QUIET_MS = 1000
const MAX_ATTEMPTS = 3
const MAX_WARMUP_MS = 15_000
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}
const percent = (ratio: number) => `${(ratio * 100).toFixed(1)}%`

/** Core 1 for this process, core 0 for the servers; nothing pinned on a machine with one core. */
function pinCores(): boolean {
  if (availableParallelism() < 2) return false
  try {
    // `-a`: every thread already started (V8's, libuv's), not only the main one.
    execFileSync('taskset', ['-a', '-p', '-c', '1', String(process.pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

async function startServer(target: Target, pinned: boolean): Promise<{ child: ChildProcess, port: number }> {
  const node = [process.execPath, '--import', 'tsx', serverFile, target]
  const [command, ...args] = pinned ? ['taskset', '-c', '0', ...node] : node
  const child = spawn(command as string, args, { cwd: rateLimitDir, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  for await (const line of createInterface({ input: child.stdout! })) {
    return { child, port: (JSON.parse(line) as { port: number }).port }
  }
  throw new Error(`${target}: the server exited before listening`)
}

async function stopServer(child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  await exited
}

interface Reading { cpuMicros: number, requests: number, errors: number, at: number }

/**
 * The server's CPU time so far, and the requests answered at the moment it was read: the count
 * moves while the question is in flight, so the mean of the counts before and after it is taken.
 */
async function read(child: ChildProcess, counts: LoadCounts): Promise<Reading> {
  const before = counts.done
  const answer = once(child, 'message') as Promise<[{ cpuMicros: number }]>
  child.send('cpu')
  const [{ cpuMicros }] = await answer
  return { cpuMicros, requests: (before + counts.done) / 2, errors: counts.errors, at: performance.now() }
}

interface Measurement { cpuMicrosPerRequest: number, requestsPerSecond: number, busy: number, refused: number }

/** One fresh server: load from all connections, warm-up, then the measured interval, without a pause between. */
async function measure(target: Target, pinned: boolean): Promise<Measurement> {
  const { child, port } = await startServer(target, pinned)
  try {
    const counts: LoadCounts = { done: 0, errors: 0 }
    let loading = true
    const more = () => loading
    const connections = Array.from({ length: CONNECTIONS }, () => keepAliveConnection(port, more, counts, STATUSES))
    // Warm until a whole second without a refusal: with its defaults the load shedder refuses some
    // requests in its first seconds under a sudden crowd of connections (its run queue admits a
    // slice of waiting requests in one go, more than the concurrency limit it starts with), then
    // none. What is measured is the steady state of a server that is not overloaded.
    const warmupStarted = performance.now()
    let quietSince = warmupStarted
    let refusedBefore = 0
    while (performance.now() - warmupStarted < WARMUP_S * 1000 || performance.now() - quietSince < QUIET_MS) {
      if (performance.now() - warmupStarted > MAX_WARMUP_MS) throw new Error(`${target}: still refusing requests after ${MAX_WARMUP_MS} ms`)
      await sleep(100)
      if (counts.errors !== refusedBefore) {
        refusedBefore = counts.errors
        quietSince = performance.now()
      }
    }
    const start = await read(child, counts)
    await sleep(SECONDS * 1000)
    const end = await read(child, counts)
    loading = false
    await Promise.all(connections)
    const requests = end.requests - start.requests
    const refused = end.errors - start.errors
    const cpuMicros = end.cpuMicros - start.cpuMicros
    const wallMicros = (end.at - start.at) * 1000
    return { cpuMicrosPerRequest: cpuMicros / requests, requestsPerSecond: requests / (wallMicros / 1e6), busy: cpuMicros / wallMicros, refused }
  } finally {
    await stopServer(child)
  }
}

const pinned = pinCores()
const command = `${Object.entries(env).filter(([name]) => name.startsWith('BENCH_')).map(([name, value]) => `${name}=${value} `).join('')}` +
  (env.npm_lifecycle_event?.startsWith('bench') === true ? `pnpm ${env.npm_lifecycle_event}` : 'tsx bench/cpu-per-request.bench.ts')
console.log(`Server CPU time per request, hello-world Fastify route — \`${command}\``)
console.log(`Node ${process.version}, ${cpus()[0]?.model ?? 'unknown CPU'} × ${cpus().length}; ` +
  (pinned ? 'server on core 0, load (this process) on core 1' : 'NOT pinned (taskset missing or one core): figures not comparable') +
  `; load average ${loadavg()[0]?.toFixed(2)} at start`)
console.log(`${ROUNDS} rounds, targets rotating; per target and round a fresh server, ${CONNECTIONS} keep-alive connections ` +
  `(one request in flight each), ${WARMUP_S} s warm-up, then ${SECONDS} s measured\n`)

// Discarded: the first measurement of a run found the load generator itself cold (its own code
// not yet optimized), the server not always saturated, and CPU per request up to 15% higher.
await measure('bare', pinned)

const cpu = new Map<Target, number[]>(targets.map((t) => [t, []]))
const ratio = new Map<Target, number[]>(targets.map((t) => [t, []]))
const busy = new Map<Target, number[]>(targets.map((t) => [t, []]))
for (let round = 0; round < ROUNDS; round++) {
  const thisRound = new Map<Target, Measurement>()
  for (let i = 0; i < targets.length; i++) {
    const target = targets[(i + round) % targets.length] as Target
    let result = await measure(target, pinned)
    // A refusal while measured (the shedder's run queue again, after a long loop turn) makes the
    // figure a mix of answers and cheaper refusals: measured again, on a fresh server.
    for (let attempt = 1; result.refused > 0; attempt++) {
      if (attempt === MAX_ATTEMPTS) throw new Error(`${target}: answers other than 200 while measured, ${MAX_ATTEMPTS} times: nothing may be refused`)
      console.log(`round ${round + 1} ${target.padEnd(20)} ${result.refused} refused while measured: measured again`)
      result = await measure(target, pinned)
    }
    thisRound.set(target, result)
    cpu.get(target)!.push(result.cpuMicrosPerRequest)
    busy.get(target)!.push(result.busy)
    console.log(`round ${round + 1} ${target.padEnd(20)} ${result.cpuMicrosPerRequest.toFixed(2).padStart(6)} µs CPU/request  ` +
      `${Math.round(result.requestsPerSecond).toString().padStart(6)} req/s  server busy ${percent(result.busy)}`)
  }
  const bare = thisRound.get('bare')!.cpuMicrosPerRequest
  for (const target of targets) ratio.get(target)!.push(bare / thisRound.get(target)!.cpuMicrosPerRequest)
}

const instructions = new Map<Target, number>()
if (INSTRUCTIONS) {
  console.log('\nInstructions per request (callgrind):')
  for (const [target, count] of await countInstructions({
    serverFile, modes: targets, warmupRequests: 10_000, windowRequests: 4000, windows: 5, connections: 4
  })) instructions.set(target as Target, count)
}

console.log(`\n| target | server CPU per request (median) | bare ÷ target (median of per-round ratios) | per-round range |${INSTRUCTIONS ? ' instructions per request |' : ''}`)
console.log(`| --- | ---: | ---: | ---: |${INSTRUCTIONS ? ' ---: |' : ''}`)
for (const target of targets) {
  const ratios = ratio.get(target)!
  const count = instructions.get(target)
  console.log(`| ${TARGETS[target]} | ${median(cpu.get(target)!).toFixed(2)} µs | ${percent(median(ratios))} | ` +
    `${percent(Math.min(...ratios))}–${percent(Math.max(...ratios))} |${INSTRUCTIONS ? ` ${count === undefined ? '–' : Math.round(count)} |` : ''}`)
}
console.log(`\nServer busy (CPU time ÷ wall time, median over all measurements): ${percent(median([...busy.values()].flat()))}; ` +
  `${ROUNDS} rounds × ${targets.length} targets; nothing else ran (the benchmark lock was held).`)

const verdict = (name: string, met: boolean, detail: string) => console.log(`${name}: ${met ? 'MET' : 'NOT MET'} (${detail})`)
const ours = ratio.has('ours-memory') ? median(ratio.get('ours-memory')!) : undefined
const theirs = ratio.has('fastify-rate-limit') ? median(ratio.get('fastify-rate-limit')!) : undefined
const all = ratio.has('all-three') ? median(ratio.get('all-three')!) : undefined
if (ours !== undefined) verdict('rate limiter, headers on, ≥ 90% of bare', ours >= 0.9, percent(ours))
if (ours !== undefined && theirs !== undefined) {
  verdict('rate limiter ≥ 5 points ahead of @fastify/rate-limit', ours - theirs >= 0.05, `${((ours - theirs) * 100).toFixed(1)} points`)
}
if (all !== undefined) verdict('all three together ≥ 85% of bare', all >= 0.85, percent(all))
