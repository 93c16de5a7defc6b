import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ServerMessage } from '../server.js'

const SERVER_PATH = fileURLToPath(new URL('../server.ts', import.meta.url))
const children = new Set<ChildProcess>()
let hooked = false

function killAll(): void {
  for (const child of children) child.kill('SIGKILL')
}

export interface TargetProcess {
  port: number
  send(message: ServerMessage): void
  stop(): Promise<void>
}

/**
 * Starts the shop API as a real process on 127.0.0.1 (a free port, reported over IPC). Every
 * child is killed when this process exits for any reason, and exits itself when its parent goes.
 */
export async function startTarget(protection: boolean, env: Record<string, string>): Promise<TargetProcess> {
  if (!hooked) {
    hooked = true
    process.on('exit', killAll)
    process.on('SIGINT', () => { killAll(); process.exit(130) })
    process.on('SIGTERM', () => { killAll(); process.exit(143) })
  }
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, PROTECTION: protection ? 'on' : 'off' }
  // The demo measures one machine with the memory store; REDIS_URL from the shell is not for it.
  delete childEnv.REDIS_URL
  const child = fork(SERVER_PATH, [], { execArgv: ['--import', 'tsx'], env: childEnv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  children.add(child)
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message) => resolve((message as { port: number }).port))
    child.once('exit', (code) => reject(new Error(`the ${protection ? 'protected' : 'unprotected'} shop API exited with code ${code} before listening`)))
  })
  return {
    port,
    send: (message) => { child.send(message) },
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
      await exited
      clearTimeout(timer)
      children.delete(child)
    }
  }
}
