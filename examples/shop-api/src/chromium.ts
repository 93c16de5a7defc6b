import { existsSync } from 'node:fs'
import { chromium, type Browser } from 'playwright-core'

/** Debian's `chromium` package: no browser is downloaded (playwright-core never does). */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'
]

export function chromiumInstalled(): boolean {
  return existsSync(CHROMIUM_PATH)
}

export async function launchChromium(): Promise<Browser> {
  return await chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true })
}
