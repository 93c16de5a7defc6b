/**
 * Instructions per request, counted by valgrind's callgrind: the figure a noisy shared machine
 * cannot move. Requests per second on this VM drift ±20% between runs of the same server, far
 * more than the few percent our plugins cost; the instructions a server executes for a request
 * are the same whatever else runs beside it.
 *
 * Each mode's server (`node --import tsx <serverFile> <mode>`, printing its port on stdout) runs
 * under callgrind, one at a time. After a warm-up long enough for V8 to optimize the hot path, the
 * counters are zeroed, a fixed number of requests is sent from this process (not instrumented),
 * and the counters are dumped: user-space instructions of every thread of the server (the main
 * thread, V8's compiler and GC threads, libuv's pool), less what the server runs by the clock
 * while idle over the same time, divided by the requests. Kernel work (the socket system calls)
 * is not counted; it is about the same for every mode, so a plugin's share of the whole CPU could
 * be smaller than printed, but req/s ratios measured beside these have matched them
 * (`@fastify/rate-limit`: 78.9% of bare by instructions, 79.2% by autocannon's req/s): read the
 * ratio as the throughput one.
 */
import { spawn, execFile } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { sendRequests } from './closed-loop-client.js'

const run = promisify(execFile)

const IDLE_MS = 3000

export interface InstructionCountOptions {
  /** The server script; it prints its port on stdout (a number, or `{"port":N}`), and serves until SIGTERM. */
  serverFile: string
  /** The modes to compare; the first is the baseline the others are divided by. */
  modes: readonly string[]
  /** Requests before counting starts (V8 tiers up by call counts, not by time). */
  warmupRequests: number
  /** Requests per counted window. */
  windowRequests: number
  /** Counted windows per mode; the median is reported. */
  windows: number
  /**
   * Windows counted but set aside first. The first window after the warm-up is always two to three
   * times the rest, and the next two still fall, however long the warm-up: they are dropped.
   */
  settleWindows?: number
  connections: number
  /** Response statuses that count as answered (others fail the run). Default `[200]`. */
  statuses?: readonly number[]
}

async function hasValgrind(): Promise<boolean> {
  try {
    await run('valgrind', ['--version'])
    return true
  } catch {
    return false
  }
}

/** Counts `windows` windows (the settling ones included) of one mode's server. */
async function countMode(
  options: InstructionCountOptions, mode: string, statuses: readonly string[], windows: number
): Promise<{ perRequest: number[], idlePerMs: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-callgrind-'))
  const child = spawn('valgrind', [
    '--tool=callgrind', `--callgrind-out-file=${join(dir, 'cg.%p')}`,
    // A young generation at its full size from the start: otherwise it grows during the run and
    // the scavenges' share of each request keeps falling, window after window.
    process.execPath, '--min-semi-space-size=16', '--max-semi-space-size=16', '--import', 'tsx', options.serverFile, mode
  ], { stdio: ['ignore', 'pipe', 'ignore'] })
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`${mode}: server exited with ${code}`)))
      child.stdout?.once('data', (data: Buffer) => {
        const parsed = JSON.parse(data.toString().trim()) as number | { port: number }
        resolve(typeof parsed === 'number' ? parsed : parsed.port)
      })
    })
    const pid = String(child.pid)
    const counted = async (work: () => Promise<void>): Promise<{ instructions: number, ms: number }> => {
      await run('callgrind_control', ['--zero', pid])
      const started = performance.now()
      await work()
      const ms = performance.now() - started
      await run('callgrind_control', ['--dump', pid])
      return { instructions: await lastDumpTotal(dir), ms }
    }
    await checked(mode, sendRequests(port, options.warmupRequests, options.connections, statuses))
    // What the server runs with no request at all, per ms: timers (the event-loop sampler fires
    // every 10 ms), V8's idle tasks, the TypeScript loader's thread. It runs by the clock, and
    // under valgrind a request takes some fifty times longer, so left in it would weigh fifty
    // times more per request than on a real server: it is taken out of every window.
    const idle = await counted(() => new Promise((resolve) => setTimeout(resolve, IDLE_MS)))
    const idlePerMs = idle.instructions / idle.ms
    const perRequest: number[] = []
    for (let window = 0; window < windows; window++) {
      const { instructions, ms } = await counted(() => checked(mode, sendRequests(port, options.windowRequests, options.connections, statuses)))
      perRequest.push((instructions - idlePerMs * ms) / options.windowRequests)
    }
    return { perRequest, idlePerMs }
  } finally {
    child.removeAllListeners('exit')
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await exited
    await rm(dir, { recursive: true, force: true })
  }
}

async function checked(mode: string, load: Promise<{ done: number, errors: number }>): Promise<void> {
  const counts = await load
  if (counts.errors > 0) throw new Error(`${mode}: ${counts.errors} requests failed`)
}

/** The `summary:` (instructions executed) of the newest dump callgrind wrote in `dir`. */
async function lastDumpTotal(dir: string): Promise<number> {
  const dumps = (await readdir(dir)).filter((name) => /^cg\.\d+\.\d+$/.test(name))
  const newest = dumps.sort((a, b) => Number(a.split('.').pop()) - Number(b.split('.').pop())).pop()
  if (newest === undefined) throw new Error('callgrind wrote no dump')
  const match = /^summary: (\d+)$/m.exec(await readFile(join(dir, newest), 'utf8'))
  if (match === null) throw new Error(`no summary in ${newest}`)
  return Number(match[1])
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] as number
}

/**
 * Each mode's instructions per request (the median of its windows), printing every window as it
 * goes. A mode whose server fails is left out of the answer, with its error printed.
 */
export async function countInstructions(options: InstructionCountOptions): Promise<Map<string, number>> {
  const counts = new Map<string, number>()
  if (!await hasValgrind()) {
    console.log('valgrind is not installed (Debian: apt-get install valgrind): no instruction counts.')
    return counts
  }
  const statuses = (options.statuses ?? [200]).map(String)
  const settle = options.settleWindows ?? 3
  console.log(`Node ${process.version}, callgrind, ${options.warmupRequests} warm-up requests, ` +
    `${settle} + ${options.windows} windows × ${options.windowRequests} requests per mode, ${options.connections} connections`)
  for (const mode of options.modes) {
    try {
      const { perRequest: windows, idlePerMs } = await countMode(options, mode, statuses, settle + options.windows)
      const settling = windows.splice(0, settle)
      counts.set(mode, median(windows))
      console.log(`${mode}: (${settling.map((n) => n.toFixed(0)).join(', ')}) ${windows.map((n) => n.toFixed(0)).join(', ')} ` +
        `instructions/request; idle ${idlePerMs.toFixed(0)}/ms, taken out`)
    } catch (error) {
      console.log(`${mode}: not counted: ${(error as Error).message}`)
    }
  }
  return counts
}

/** Prints each mode's instructions per request (every window, then a table against the baseline). */
export async function runInstructionCount(options: InstructionCountOptions): Promise<void> {
  const counts = await countInstructions(options)
  const base = options.modes[0] as string
  const baseline = counts.get(base)
  if (baseline === undefined) {
    process.exitCode = 1
    return
  }
  console.log(`\n| mode | instructions per request (median) | added to ${base} | ${base} ÷ this (CPU-bound throughput) |`)
  console.log('| --- | ---: | ---: | ---: |')
  for (const [mode, count] of counts) {
    console.log(`| ${mode} | ${count.toFixed(0)} | ${(count - baseline).toFixed(0)} | ${(100 * baseline / count).toFixed(1)}% |`)
  }
}
