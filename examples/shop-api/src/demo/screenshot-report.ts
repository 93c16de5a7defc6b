/**
 * Saves PNG images of a demo report's charts (headless Chromium), for the README:
 * `tsx examples/shop-api/src/demo/screenshot-report.ts [report.html] [out-dir]`
 * (defaults: examples/shop-api/report/index.html → examples/shop-api/docs/).
 */
import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { launchChromium } from '../chromium.js'

const packageDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
const reportPath = resolve(process.argv[2] ?? resolve(packageDir, 'report', 'index.html'))
const outDir = resolve(process.argv[3] ?? resolve(packageDir, 'docs'))

const browser = await launchChromium()
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 })
  await page.goto(pathToFileURL(reportPath).href)
  await page.waitForSelector('#chart-0 canvas')
  mkdirSync(outDir, { recursive: true })
  const names = ['goodput', 'p99', 'refused', 'shed-and-level', 'rate-limited']
  for (const [index, name] of names.entries()) {
    // The chart's heading and its pair of plots (unprotected, protected), as one image.
    await page.locator(`#chart-${index}`).screenshot({ path: resolve(outDir, `demo-${name}.png`) })
  }
  console.log(`images written to ${outDir}`)
} finally {
  await browser.close()
}
