import { answered, p99Ms, type Bucket } from './timeline.js'
import type { ServerSample } from './summary.js'

const BAR_WIDTH = 20

/**
 * One line per second: progress, phase, goodput per priority, checkout p99, shed rate, 429s and the
 * degradation level. Whole lines (no cursor tricks), so a CI log reads the same as a terminal.
 */
export function liveLine(options: {
  target: string
  elapsedSeconds: number
  totalSeconds: number
  phaseLabel: string
  /** Outcomes that settled during the last second. */
  bucket: Bucket
  server: ServerSample | undefined
}): string {
  const { bucket, server } = options
  const done = Math.min(BAR_WIDTH, Math.round((options.elapsedSeconds / options.totalSeconds) * BAR_WIDTH))
  const bar = `[${'#'.repeat(done)}${'.'.repeat(BAR_WIDTH - done)}]`
  const shoppers = [bucket.high, bucket.normal, bucket.low]
  const total = shoppers.reduce((sum, slot) => sum + answered(slot), 0)
  const shed = shoppers.reduce((sum, slot) => sum + slot.shed, 0)
  const timedOut = shoppers.reduce((sum, slot) => sum + slot.timedOut, 0)
  const p99 = p99Ms(bucket.high)
  const level = server?.level ?? null
  return [
    `${options.target.padEnd(11)} ${bar} ${String(Math.round(options.elapsedSeconds)).padStart(3)}/${options.totalSeconds} s`,
    options.phaseLabel.padEnd(40),
    `ok/s high ${String(bucket.high.ok).padStart(4)} normal ${String(bucket.normal.ok).padStart(4)} low ${String(bucket.low.ok).padStart(4)}`,
    `p99 high ${p99 === null ? '   –' : `${p99.toFixed(0).padStart(4)} ms`}`,
    `shed ${total === 0 ? '  0' : ((shed / total) * 100).toFixed(0).padStart(3)}%`,
    `timeouts ${String(timedOut).padStart(4)}`,
    `429/s ${String(bucket.bot.limited + bucket.high.limited).padStart(3)}`,
    `level ${level === null ? '–' : String(level)}`
  ].join('  ')
}
