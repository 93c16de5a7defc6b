/**
 * The harness the packages' throughput benchmarks share: servers in child processes, load from
 * this process through raw keep-alive sockets (a closed loop: one request in flight per
 * connection), lighter than an HTTP client library, so that the client is less of the bottleneck.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { keepAliveConnection } from './closed-loop-client.js'

async function startServer(serverFile: string, mode: string): Promise<{ child: ChildProcess, port: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', serverFile, mode], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
  const port = await new Promise<number>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server exited with ${code}`)))
    child.stdout?.once('data', (data: Buffer) => resolve(Number(data.toString().trim())))
  })
  return { child, port }
}

async function stopServer(child: ChildProcess): Promise<void> {
  await new Promise<void>((resolve) => {
    child.removeAllListeners('exit')
    child.once('exit', () => resolve())
    child.kill('SIGTERM')
  })
}

function serverCpuMicros(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('message', (message: { cpuMicros: number }) => resolve(message.cpuMicros))
    child.send('cpu')
  })
}

/** Requests per second, and the server's CPU time per request (µs). */
async function measure(
  server: { child: ChildProcess, port: number }, seconds: number, connections: number, statuses: readonly string[]
): Promise<{ rps: number, cpuUs: number }> {
  const counts = { done: 0, errors: 0 }
  const cpuBefore = await serverCpuMicros(server.child)
  const started = performance.now()
  const until = started + seconds * 1000
  const more = () => performance.now() < until
  await Promise.all(Array.from({ length: connections }, () => keepAliveConnection(server.port, more, counts, statuses)))
  const elapsedS = (performance.now() - started) / 1000
  const cpuAfter = await serverCpuMicros(server.child)
  if (counts.errors > 0) throw new Error(`${counts.errors} errors on port ${server.port}`)
  return { rps: counts.done / elapsedS, cpuUs: (cpuAfter - cpuBefore) / counts.done }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] as number
}

export interface AlternatingThroughputOptions {
  /** The server script, started as `node --import tsx <serverFile> <mode>`; prints its port, answers 'cpu' over IPC. */
  serverFile: string
  /** The modes to compare; the first is the baseline the others are divided by. */
  modes: readonly string[]
  rounds: number
  seconds: number
  connections: number
  /** Response statuses that count as answered (others are errors, and fail the run). Default `[200]`. */
  statuses?: readonly number[]
}

/**
 * Throughput of one hello-world route per mode, each server in its own child process, measured
 * in short slices that alternate between the modes round after round (rotating the order), and
 * reported against the baseline of the same round (median of the per-round ratios): the machine
 * is shared and its speed drifts between rounds more than the costs being measured.
 */
export async function runAlternatingThroughput(options: AlternatingThroughputOptions): Promise<void> {
  const { serverFile, modes, rounds, seconds, connections } = options
  const statuses = (options.statuses ?? [200]).map(String)
  const base = modes[0] as string
  const rps = new Map<string, number[]>(modes.map((mode) => [mode, []]))
  const cpu = new Map<string, number[]>(modes.map((mode) => [mode, []]))
  console.log(`Node ${process.version}, ${connections} connections, ${rounds} rounds × ${seconds} s per mode, modes alternating`)
  const servers = new Map<string, { child: ChildProcess, port: number }>()
  try {
    for (const mode of modes) {
      const server = await startServer(serverFile, mode)
      servers.set(mode, server)
      await measure(server, 1, connections, statuses) // warm-up: JIT, connection setup
    }
    for (let round = 0; round < rounds; round++) {
      const line: string[] = []
      for (let i = 0; i < modes.length; i++) {
        const mode = modes[(i + round) % modes.length] as string
        const result = await measure(servers.get(mode) as { child: ChildProcess, port: number }, seconds, connections, statuses)
        rps.get(mode)?.push(result.rps)
        cpu.get(mode)?.push(result.cpuUs)
        line.push(`${mode} ${result.rps.toFixed(0)}/s ${result.cpuUs.toFixed(1)}µs`)
      }
      console.log(`round ${String(round + 1).padStart(2)}: ${line.join(', ')}`)
    }
  } finally {
    for (const { child } of servers.values()) await stopServer(child)
  }
  const ratio = (values: number[], baseline: number[], invert: boolean) =>
    median(values.map((value, i) => invert ? (baseline[i] as number) / value : value / (baseline[i] as number)))
  console.log(`\n| mode | median req/s | req/s vs ${base} (median of per-round ratios) | server CPU per request | ${base} CPU ÷ this CPU |`)
  console.log('| --- | --- | --- | --- | --- |')
  for (const mode of modes) {
    const r = rps.get(mode) as number[]
    const c = cpu.get(mode) as number[]
    console.log(`| ${mode} | ${median(r).toFixed(0)} | ${(100 * ratio(r, rps.get(base) as number[], false)).toFixed(1)}% | ` +
      `${median(c).toFixed(1)} µs | ${(100 * ratio(c, cpu.get(base) as number[], true)).toFixed(1)}% |`)
  }
}
