import { fork } from 'node:child_process'
import { measureCapacity } from './open-loop.js'
for (const target of ['unprotected', 'spillway']) {
  const child = fork(new URL('./server-process.ts', import.meta.url).pathname, ['cpu', target, '84000'], { execArgv: ['--import', 'tsx'] })
  const port = await new Promise<number>((r) => child.once('message', (m) => r((m as { port: number }).port)))
  for (const path of ['/health', '/health']) {
    console.log(target, path, (await measureCapacity({ port, path, concurrency: 32, durationMs: 2000, warmupMs: 500 })).toFixed(0))
  }
  child.kill()
}
