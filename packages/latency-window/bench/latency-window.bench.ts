/**
 * Cost of the latency window against the textbook alternative, measured side by side in one run:
 * a ring of the last N samples that sorts a copy to answer a quantile.
 * Run: pnpm --filter @spillway/latency-window bench  (or `pnpm bench` at the root)
 */
import { performance } from 'node:perf_hooks'
import { LatencyWindow } from '../src/latency-window.js'

const SAMPLES = 10_000

/** The baseline: what a load shedder written from a textbook keeps. */
class SortedRingBaseline {
  readonly #ring: Float64Array
  #next = 0
  #size = 0
  constructor(capacity: number) {
    this.#ring = new Float64Array(capacity)
  }
  record(ms: number): void {
    this.#ring[this.#next] = ms
    this.#next = (this.#next + 1) % this.#ring.length
    if (this.#size < this.#ring.length) this.#size++
  }
  quantile(q: number): number {
    const sorted = this.#ring.slice(0, this.#size).sort()
    return sorted[Math.max(0, Math.ceil(q * this.#size) - 1)]!
  }
}

function values(n: number): Float64Array {
  const out = new Float64Array(n)
  let seed = 12345
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    out[i] = Math.exp((seed / 0x7fffffff) * 8 - 2) // 0.13 ms to 400 ms, log-uniform
  }
  return out
}

/** Best of several rounds, in ns per operation: the least disturbed by the rest of the machine. */
function nsPerOp(rounds: number, opsPerRound: number, body: () => void): number {
  let best = Infinity
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint()
    body()
    const ns = Number(process.hrtime.bigint() - start) / opsPerRound
    if (ns < best) best = ns
  }
  return best
}

const data = values(1 << 16)
const mask = data.length - 1
let sink = 0

const window = new LatencyWindow()
const baseline = new SortedRingBaseline(SAMPLES)
const RECORDS = 2_000_000

const recordWithClock = nsPerOp(7, RECORDS, () => {
  for (let i = 0; i < RECORDS; i++) window.record(data[i & mask]!)
})
const recordWithTimestamp = nsPerOp(7, RECORDS, () => {
  const at = performance.now()
  for (let i = 0; i < RECORDS; i++) window.record(data[i & mask]!, at)
})
const recordBaseline = nsPerOp(7, RECORDS, () => {
  for (let i = 0; i < RECORDS; i++) baseline.record(data[i & mask]!)
})
const clockRead = nsPerOp(7, RECORDS, () => {
  for (let i = 0; i < RECORDS; i++) sink += performance.now()
})

// Quantiles over exactly SAMPLES samples in both.
const fresh = new LatencyWindow()
const ring = new SortedRingBaseline(SAMPLES)
for (let i = 0; i < SAMPLES; i++) {
  fresh.record(data[i]!)
  ring.record(data[i]!)
}
const QUANTILES = 20_000
const quantileNs = nsPerOp(5, QUANTILES, () => {
  for (let i = 0; i < QUANTILES; i++) sink += fresh.quantile(0.99)
})
const snapshotNs = nsPerOp(5, QUANTILES, () => {
  for (let i = 0; i < QUANTILES; i++) sink += fresh.snapshot().p99
})
const BASELINE_QUANTILES = 200
const quantileBaselineNs = nsPerOp(5, BASELINE_QUANTILES, () => {
  for (let i = 0; i < BASELINE_QUANTILES; i++) sink += ring.quantile(0.99)
})

// Bytes per window: what the window holds, and what the heap grows by for 1000 of them.
const gc = (globalThis as { gc?: () => void }).gc
gc?.()
const before = process.memoryUsage()
const many = Array.from({ length: 1000 }, () => new LatencyWindow())
gc?.()
const after = process.memoryUsage()
const heapPerWindow = (after.heapUsed + after.arrayBuffers - before.heapUsed - before.arrayBuffers) / many.length

const rows: Array<[string, string, string, string]> = [
  ['record (clock read inside)', `${recordWithClock.toFixed(1)} ns`, `${recordBaseline.toFixed(1)} ns`, ratio(recordBaseline, recordWithClock)],
  ['record (caller passes time)', `${recordWithTimestamp.toFixed(1)} ns`, `${recordBaseline.toFixed(1)} ns`, ratio(recordBaseline, recordWithTimestamp)],
  [`quantile over ${SAMPLES} samples`, `${(quantileNs / 1000).toFixed(2)} µs`, `${(quantileBaselineNs / 1000).toFixed(1)} µs`, ratio(quantileBaselineNs, quantileNs)],
  ['snapshot (4 quantiles + stats)', `${(snapshotNs / 1000).toFixed(2)} µs`, `${(4 * quantileBaselineNs / 1000).toFixed(1)} µs`, ratio(4 * quantileBaselineNs, snapshotNs)],
  ['bytes per window', `${window.byteLength} B`, `${SAMPLES * 8} B`, '']
]
console.log(`@spillway/latency-window bench (node ${process.version}, performance.now() costs ${clockRead.toFixed(1)} ns here)`)
console.log(table(['operation', 'LatencyWindow', 'sorted ring baseline', 'speed-up'], rows))
console.log(`heap growth per window: ${gc ? `${Math.round(heapPerWindow)} B` : 'run with node --expose-gc to measure'}`)
console.log(`targets: record <= 50 ns ${recordWithTimestamp <= 50 ? 'MET' : 'MISSED'} (${recordWithTimestamp.toFixed(1)} ns as the plugins call it, ` +
  `passing the time they already read; ${recordWithClock.toFixed(1)} ns reading the clock itself, ${clockRead.toFixed(1)} ns of which is the clock); ` +
  `quantile <= 20 µs ${quantileNs <= 20_000 ? 'MET' : 'MISSED'}; >= 100x the sort baseline ${quantileBaselineNs / quantileNs >= 100 ? 'MET' : 'MISSED'}; ` +
  `<= 64 KiB ${window.byteLength <= 65_536 ? 'MET' : 'MISSED'}`)
if (sink === 42) console.log('')

function ratio(baselineNs: number, oursNs: number): string {
  return `${(baselineNs / oursNs).toFixed(1)}x`
}

function table(head: string[], body: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((r) => r[i]!.length)))
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ')
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n')
}
