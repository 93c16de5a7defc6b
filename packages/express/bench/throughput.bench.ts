/**
 * Throughput of a hello-world Express route with each middleware, against bare Express, over loopback.
 * Each server runs in a child process; the load comes from this process through raw keep-alive
 * sockets (a closed loop: one request in flight per connection), lighter than an HTTP client
 * library, so that the client is less of the bottleneck. All servers stay up; short measurements
 * alternate between them round after round (rotating the order), and each mode is compared with
 * the bare server of the same round (median of the per-round ratios), because the machine is
 * shared and its speed drifts.
 *
 *   pnpm --filter @spillway/express bench      (ROUNDS, SECONDS, CONNECTIONS, MODES env)
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'

const ROUNDS = Number(process.env.ROUNDS ?? 20)
const SECONDS = Number(process.env.SECONDS ?? 1)
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 8)
const ALL_MODES = ['bare', 'noop-middleware', 'meter-only', 'rate-limit', 'express-rate-limit', 'load-shedding', 'degradation', 'all-three'] as const
type Mode = (typeof ALL_MODES)[number]
const MODES: Mode[] = process.env.MODES === undefined
  ? [...ALL_MODES]
  : ['bare', ...process.env.MODES.split(',').filter((m): m is Mode => m !== 'bare' && (ALL_MODES as readonly string[]).includes(m))]

const serverFile = fileURLToPath(new URL('./server.ts', import.meta.url))

async function startServer(mode: Mode): Promise<{ child: ChildProcess, port: number }> {
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

const REQUEST = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')

/** One keep-alive connection sending a request whenever the previous response is complete. */
function connection(port: number, until: number, counts: { done: number, errors: number }): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', noDelay: true })
    let buffered = ''
    socket.setEncoding('latin1')
    socket.on('connect', () => socket.write(REQUEST))
    socket.on('data', (chunk: string) => {
      buffered += chunk
      for (;;) {
        const headerEnd = buffered.indexOf('\r\n\r\n')
        if (headerEnd < 0) return
        const match = /content-length: (\d+)/i.exec(buffered.slice(0, headerEnd))
        const total = headerEnd + 4 + Number(match?.[1] ?? 0)
        if (buffered.length < total) return
        if (!buffered.startsWith('HTTP/1.1 200')) counts.errors++
        buffered = buffered.slice(total)
        counts.done++
        if (performance.now() >= until) {
          socket.end()
          return
        }
        socket.write(REQUEST)
      }
    })
    socket.on('error', () => {
      counts.errors++
      resolve()
    })
    socket.on('close', () => resolve())
  })
}

function serverCpuMicros(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('message', (message: { cpuMicros: number }) => resolve(message.cpuMicros))
    child.send('cpu')
  })
}

/** Requests per second, and the server's CPU time per request (µs). */
async function measure(server: { child: ChildProcess, port: number }, seconds: number): Promise<{ rps: number, cpuUs: number }> {
  const counts = { done: 0, errors: 0 }
  const cpuBefore = await serverCpuMicros(server.child)
  const started = performance.now()
  const until = started + seconds * 1000
  await Promise.all(Array.from({ length: CONNECTIONS }, () => connection(server.port, until, counts)))
  const elapsedS = (performance.now() - started) / 1000
  const cpuAfter = await serverCpuMicros(server.child)
  if (counts.errors > 0) throw new Error(`${counts.errors} errors on port ${server.port}`)
  return { rps: counts.done / elapsedS, cpuUs: (cpuAfter - cpuBefore) / counts.done }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)] as number
}

const rps = Object.fromEntries(ALL_MODES.map((mode) => [mode, [] as number[]])) as Record<Mode, number[]>
const cpu = Object.fromEntries(ALL_MODES.map((mode) => [mode, [] as number[]])) as Record<Mode, number[]>
console.log(`Node ${process.version}, ${CONNECTIONS} connections, ${ROUNDS} rounds × ${SECONDS} s per mode, modes alternating`)
const servers = new Map<Mode, { child: ChildProcess, port: number }>()
try {
  for (const mode of MODES) {
    const server = await startServer(mode)
    servers.set(mode, server)
    await measure(server, 1) // warm-up: JIT, connection setup
  }
  for (let round = 0; round < ROUNDS; round++) {
    const order = MODES.map((_, i) => MODES[(i + round) % MODES.length] as Mode)
    const line: string[] = []
    for (const mode of order) {
      const result = await measure(servers.get(mode) as { child: ChildProcess, port: number }, SECONDS)
      rps[mode].push(result.rps)
      cpu[mode].push(result.cpuUs)
      line.push(`${mode} ${result.rps.toFixed(0)}/s ${result.cpuUs.toFixed(1)}µs`)
    }
    console.log(`round ${String(round + 1).padStart(2)}: ${line.join(', ')}`)
  }
} finally {
  for (const { child } of servers.values()) await stopServer(child)
}
const ratio = (values: number[], base: number[], invert: boolean) =>
  median(values.map((value, i) => invert ? (base[i] as number) / value : value / (base[i] as number)))
console.log('\n| mode | median req/s | req/s vs bare (median of per-round ratios) | server CPU per request | bare CPU ÷ this CPU |')
console.log('| --- | --- | --- | --- | --- |')
for (const mode of MODES) {
  console.log(`| ${mode} | ${median(rps[mode]).toFixed(0)} | ${(100 * ratio(rps[mode], rps.bare, false)).toFixed(1)}% | ` +
    `${median(cpu[mode]).toFixed(1)} µs | ${(100 * ratio(cpu[mode], cpu.bare, true)).toFixed(1)}% |`)
}
