/**
 * The server side of the alternating-throughput harness (`alternating-throughput.ts`), run in the
 * child process: announces the port on stdout, answers each IPC message with the process's CPU
 * time so far — CPU per request is far less disturbed than req/s by other processes competing for
 * the same cores — and closes on SIGTERM.
 */
export function serveHarness(port: number, close: () => Promise<unknown>): void {
  process.stdout.write(`${port}\n`)
  process.on('message', () => {
    const { user, system } = process.cpuUsage()
    process.send?.({ cpuMicros: user + system })
  })
  process.on('SIGTERM', () => void close().then(() => process.exit(0)))
}
