import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import type { Express } from 'express'
import type { Test } from 'tap'

/** Serves `app` on an ephemeral 127.0.0.1 port until the test ends; answers its base URL. */
export async function serve(t: Test, app: Express): Promise<string> {
  const server = app.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** A clock the test moves by hand. */
export function manualClock(start = 0): { now: () => number, advance: (ms: number) => void } {
  let time = start
  return { now: () => time, advance: (ms) => { time += ms } }
}
