import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/**
 * `--log`: where the target servers write Fastify's request log (pino, an "incoming request" and a
 * "request completed" line per request, a refused one included), one file per server in a fresh
 * directory under the OS temp dir, removed by `remove()`. Files, not a pipe to this process, so the
 * load generator pays nothing for the servers' logging.
 */
export class RequestLogs {
  readonly directory: string
  readonly #files = new Map<string, string>()

  constructor() {
    this.directory = mkdtempSync(join(tmpdir(), 'spillway-bench-log-'))
  }

  /** The log file of the server named `name` (a name per server: scenario, target, crowd). */
  fileFor(name: string): string {
    const file = join(this.directory, `${name.replace(/[^\w.-]+/g, '_')}.log`)
    this.#files.set(name, file)
    return file
  }

  /** Lines and MB a server wrote, read after it stopped (so its last lines are flushed). */
  sizeOf(name: string): { lines: number, megabytes: number } {
    const file = this.#files.get(name)
    if (file === undefined) return { lines: 0, megabytes: 0 }
    try {
      const bytes = statSync(file).size
      let lines = 0
      for (const byte of readFileSync(file)) if (byte === 0x0a) lines++
      return { lines, megabytes: bytes / 1e6 }
    } catch {
      return { lines: 0, megabytes: 0 }
    }
  }

  remove(): void {
    rmSync(this.directory, { recursive: true, force: true })
  }
}

/** The table heading's note, so that a figure with logging on is never read as one without. */
export const LOGGING_NOTE = 'request logging ON (Fastify/pino into a file: two lines per request, a refusal included)'
