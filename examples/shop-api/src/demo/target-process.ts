import { forkServer } from '@spillway/overload-bench/server-child'
import { fileURLToPath } from 'node:url'
import type { ServerMessage } from '../server.js'

const SERVER_PATH = fileURLToPath(new URL('../server.ts', import.meta.url))
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
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, PROTECTION: protection ? 'on' : 'off' }
  // The demo measures one machine with the memory store; REDIS_URL from the shell is not for it.
  delete childEnv.REDIS_URL
  const server = await forkServer(SERVER_PATH, [], { name: `the ${protection ? 'protected' : 'unprotected'} shop API`, env: childEnv })
  return {
    port: server.port,
    send: (message) => { server.child.send(message) },
    stop: server.stop
  }
}
