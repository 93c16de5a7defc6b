/**
 * The live dashboard in a real browser: headless Chromium (Debian's `chromium` package, driven by
 * playwright-core) opens /spillway, the test forces degradation level 2 through the admin route
 * of the overrides API, and the page must show it — level, and both features off — from its
 * server-sent events. A screenshot goes to examples/shop-api/report/ (gitignored).
 * Without Chromium the test skips loudly; under CI=true or REQUIRE_BROWSER=1 it fails instead.
 */
import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { createShopApp } from '../examples/shop-api/src/app.js'
import { CHROMIUM_PATH, chromiumInstalled, launchChromium } from '../examples/shop-api/src/chromium.js'
import { calibrateCpuWork } from '../examples/shop-api/src/work.js'

// Generous: Chromium shares two cores with the other test files running in parallel.
const WAIT_MS = 20_000
const required = process.env.CI === 'true' || process.env.REQUIRE_BROWSER === '1'
const screenshotPath = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'examples', 'shop-api', 'report', 'dashboard.png')

function browserOptions(): { skip: false | string } {
  if (chromiumInstalled()) return { skip: false }
  const message = `NO CHROMIUM at ${CHROMIUM_PATH}: the dashboard browser test is SKIPPED. Install it with: apt-get install -y chromium`
  if (required) throw new Error(`${message} (CI=true / REQUIRE_BROWSER=1 makes this a failure)`)
  console.error(`\n${'!'.repeat(message.length)}\n${message}\n${'!'.repeat(message.length)}\n`)
  return { skip: message }
}

t.test('the dashboard shows a forced level change within seconds', browserOptions(), async (t) => {
  const adminToken = 'browser-test-token-0123456789'
  const app = await createShopApp({ protection: true, cpuIterationsPerMs: calibrateCpuWork(1), adminToken })
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const browser = await launchChromium()
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1200, height: 720 } })
  const pageErrors: string[] = []
  page.on('pageerror', (error) => pageErrors.push(error.message))

  /** Waits until the element reads `text`; on a timeout, fails saying what the page showed instead. */
  const waitForText = async (selector: string, text: string): Promise<void> => {
    try {
      // A string predicate: it runs in the page, where `document` exists (not in this program's types).
      await page.waitForFunction(`document.querySelector(${JSON.stringify(selector)})?.textContent === ${JSON.stringify(text)}`, undefined, { timeout: WAIT_MS })
    } catch (error) {
      const shown = await page.textContent(selector).catch(() => null)
      const status = await page.textContent('#status').catch(() => null)
      throw new Error(`${selector} still reads ${JSON.stringify(shown)} (wanted ${JSON.stringify(text)}; status ${JSON.stringify(status)}; page errors ${JSON.stringify(pageErrors)})`, { cause: error })
    }
  }

  const forceLevel = async (level: number): Promise<void> => {
    const response = await fetch(`http://127.0.0.1:${port}/_spillway/degradation`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ level, ttlMs: 60_000, reason: 'browser test' })
    })
    t.ok(response.ok, `admin route accepted level ${level} (${response.status})`)
  }

  // Level 0 forced first: on a busy machine the controller may raise the level by itself (the
  // event loop of this process does stall while Chromium starts), and the test is about the page.
  await forceLevel(0)
  await page.goto(`http://127.0.0.1:${port}/spillway`)
  await waitForText('#level', '0')
  t.equal(await page.textContent('#features-off'), 'none', 'level 0: no feature off')

  await forceLevel(2)

  // The level changes on the next evaluation (500 ms) and reaches the page with the next event (1 s).
  await waitForText('#level', '2')
  t.equal(await page.textContent('#level'), '2', 'the page shows level 2')
  t.equal(await page.textContent('#features-off'), 'recommendations, search_suggestions', 'and both features off')
  t.match(await page.textContent('#forced') ?? '', /override/, 'and that an override forced it')
  t.match(await page.textContent('#limit') ?? '', /^\d/, 'load-shedding figures are shown')
  t.match(await page.textContent('#store') ?? '', /memory/, 'rate-limit figures are shown')

  mkdirSync(dirname(screenshotPath), { recursive: true })
  await page.screenshot({ path: screenshotPath, fullPage: true })
  t.comment(`screenshot: ${screenshotPath}`)
  t.same(pageErrors, [], 'no script error on the page')
})
