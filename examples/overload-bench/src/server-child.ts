/**
 * A server under test in a child process: forked with tsx, it reports `{ port }` over IPC once it
 * listens. Every child is killed when this process exits for any reason; the children exit by
 * themselves when their parent goes.
 */
import { fork, type ChildProcess } from 'node:child_process'

export interface ServerChild {
  child: ChildProcess
  port: number
  /** SIGTERM, then SIGKILL if it has not exited 3 s later. */
  stop(): Promise<void>
}

const children = new Set<ChildProcess>()
let hooked = false

/** Kills every server child still running (a run that failed halfway). */
export function killServers(): void {
  for (const child of children) child.kill('SIGKILL')
}

/** Forks `path` with `args`; answers once the child has reported its port. `name` is for the error if it never does. */
export async function forkServer(
  path: string, args: readonly string[], options: { name: string, env?: NodeJS.ProcessEnv }
): Promise<ServerChild> {
  if (!hooked) {
    hooked = true
    process.on('exit', killServers)
    process.on('SIGINT', () => { killServers(); process.exit(130) })
    process.on('SIGTERM', () => { killServers(); process.exit(143) })
  }
  // BENCH_SERVER_NODE_ARGS (say `--cpu-prof --cpu-prof-dir=/tmp/prof`): options Node refuses in NODE_OPTIONS, for the servers only.
  const extra = process.env.BENCH_SERVER_NODE_ARGS?.split(' ').filter((arg) => arg !== '') ?? []
  const child = fork(path, [...args], {
    execArgv: ['--import', 'tsx', ...extra], env: options.env ?? process.env, stdio: ['ignore', 'inherit', 'inherit', 'ipc']
  })
  children.add(child)
  const port = await new Promise<number>((resolve, reject) => {
    child.once('message', (message) => resolve((message as { port: number }).port))
    child.once('exit', (code) => reject(new Error(`${options.name} exited with code ${code} before listening`)))
  })
  return {
    child,
    port,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve))
        child.kill('SIGTERM')
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000)
        await exited
        clearTimeout(timer)
      }
      children.delete(child)
    }
  }
}
