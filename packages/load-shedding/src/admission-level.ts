import { optionMessage } from '@spillway/latency-window/core'
import { failOption } from './errors.js'

export interface AdmissionLevelOptions {
  /** Number of levels (priorities × cohorts). */
  levels: number
  /** Levels below this are never shed by the threshold (the `critical` priority). */
  floor: number
  /**
   * Levels per priority (the cohorts). One overloaded update cuts into one priority at most: it
   * stops at the first level of the least important priority still admitted.
   */
  rankSize: number
  /** Least share of the admitted traffic cut per overloaded update, (0, 1). */
  tightenRatio: number
  /** Most share cut per update, however severe the overload. */
  maxTightenRatio: number
  /** Share of admitted traffic added back per calm update. */
  relaxRatio: number
  /** A calm update re-admits at least this share of the remembered capacity at once. */
  capacityShare: number
  /** Updates after a cut during which an overload does not cut again. */
  holdUpdates: number
}

/**
 * The priority threshold: which (priority, cohort) levels are admitted. Level 0 is the most
 * important; a request is admitted when its level is below `admitted`.
 *
 * After DAGOR (SoCC 2018, §4.2): keep a histogram of arrivals per level and, on every update, move
 * the threshold so that the admitted arrival rate becomes a target —
 *
 *   overloaded: target = admittedRate × (1 − clamp(tightenRatio × severity, tightenRatio, maxTightenRatio))
 *   calm:       target = max(admittedRate × max(1 + relaxRatio, growth), capacityShare × capacity)
 *
 * where `capacity` is a moving average of the admitted rate at the moments the server was found
 * overloaded (what it could not quite take). Tightening is fast (10–50% per update), relaxing slow
 * (5% per update, or the measured headroom the caller passes as `growth`) except straight back up to 90% of the remembered capacity, which makes shedding
 * end within a few updates once the overload stops without re-admitting a known overload.
 * After a cut, the next `holdUpdates` overloaded updates do not cut again: the signals lag the
 * admission by the time the queue left behind takes to drain (CoDel's lesson, RFC 8289: act on a
 * standing queue, not on the one you already acted on).
 * The histogram is an exponential moving average of arrivals per second (weight ½ per update), so
 * one noisy interval does not move the threshold much.
 */
export class AdmissionLevel {
  readonly levels: number
  readonly floor: number
  readonly rankSize: number
  readonly tightenRatio: number
  readonly maxTightenRatio: number
  readonly relaxRatio: number
  readonly capacityShare: number
  readonly holdUpdates: number
  /** Arrivals per level since the last update; the hot path increments it. */
  readonly arrivals: Uint32Array
  readonly #ratePerSecond: Float64Array
  #admitted: number
  #capacityPerSecond = 0
  #hold = 0

  /**
   * Takes its settings as they are (the plugin's options were checked and defaulted once, at
   * registration); only its own invariants are asserted, which no user option sets directly.
   */
  constructor(options: Readonly<AdmissionLevelOptions>) {
    const { levels, floor, rankSize, tightenRatio, maxTightenRatio } = options
    if (!Number.isInteger(levels) || levels < 1) throw failOption(optionMessage('levels', levels, 'an integer >= 1'))
    if (!Number.isInteger(floor) || floor < 0 || floor > levels) throw failOption(optionMessage('floor', floor, `an integer in [0, ${levels}]`))
    if (!Number.isInteger(rankSize) || rankSize < 1 || rankSize > levels) {
      throw failOption(optionMessage('rankSize', rankSize, `an integer in [1, ${levels}]`))
    }
    if (!(maxTightenRatio >= tightenRatio)) {
      throw failOption(optionMessage('maxTightenRatio', maxTightenRatio, `at least tightenRatio (${tightenRatio})`))
    }
    this.levels = options.levels
    this.floor = options.floor
    this.rankSize = options.rankSize
    this.tightenRatio = options.tightenRatio
    this.maxTightenRatio = options.maxTightenRatio
    this.relaxRatio = options.relaxRatio
    this.capacityShare = options.capacityShare
    this.holdUpdates = options.holdUpdates
    this.arrivals = new Uint32Array(this.levels)
    this.#ratePerSecond = new Float64Array(this.levels)
    this.#admitted = this.levels
  }

  /** Levels `[0, admitted)` are admitted. */
  get admitted(): number {
    return this.#admitted
  }

  /** Share of the sheddable levels currently shed: 0 none, 1 all but the floor. */
  get shedShare(): number {
    const sheddable = this.levels - this.floor
    return sheddable === 0 ? 0 : (this.levels - this.#admitted) / sheddable
  }

  /** Remembered capacity, admitted requests per second (0 until the first overload). */
  get capacityPerSecond(): number {
    return this.#capacityPerSecond
  }

  /** Smoothed arrival rate of all levels, per second. */
  get arrivalRatePerSecond(): number {
    return this.#rateBelow(this.levels)
  }

  /** Smoothed arrival rate of the admitted levels, per second. */
  get admittedRatePerSecond(): number {
    return this.#rateBelow(this.#admitted)
  }

  /**
   * Folds the arrivals counted since the last update into the histogram and moves the threshold.
   * @param elapsedMs time since the last update
   * @param overloaded whether any signal said the server is overloaded in that time
   * @param severity how far past its limit the worst signal is (1 = just at it)
   * @param growth on a calm update, the factor the caller knows the admitted rate can grow by
   *   (from measured headroom); at least `1 + relaxRatio` is used
   * @param ceilingRate on an overloaded update, a measured rate the admitted rate must come down
   *   to, used instead of the severity's cut (nothing is cut when the admitted rate is below it)
   */
  update(elapsedMs: number, overloaded: boolean, severity: number, growth = 1 + this.relaxRatio, ceilingRate?: number): number {
    this.observe(elapsedMs)
    const admittedRate = this.#rateBelow(this.#admitted)
    if (overloaded && this.#hold > 0) {
      // A cut shows in the signals only once the backlog it left has drained; cutting again before
      // that would count the same overload twice and overshoot.
      this.#hold--
    } else if (overloaded) {
      this.#hold = this.holdUpdates
      const cut = Math.min(this.maxTightenRatio, Math.max(this.tightenRatio, this.tightenRatio * severity))
      this.#capacityPerSecond = this.#capacityPerSecond === 0
        ? admittedRate
        : 0.7 * this.#capacityPerSecond + 0.3 * admittedRate
      const target = ceilingRate ?? admittedRate * (1 - cut)
      // A priority is cut into only once the less important ones are shed in full, in an update of
      // its own: the histogram's rates are estimates, and a cut sized on them must not overrun a
      // priority boundary because one interval's estimate of the lower priority came out small.
      const rankStart = Math.floor((this.#admitted - 1) / this.rankSize) * this.rankSize
      this.#admitted = Math.max(this.floor, rankStart, Math.min(this.#admitted, this.#highestLevelWithin(target)))
    } else if (this.#admitted < this.levels) {
      this.#hold = 0
      const target = Math.max(admittedRate * Math.max(1 + this.relaxRatio, growth), this.capacityShare * this.#capacityPerSecond)
      this.#admitted = Math.max(this.#admitted + 1, this.#lowestLevelReaching(target))
    }
    return this.#admitted
  }

  /** Folds the arrivals since the last update into the histogram without moving the threshold. */
  observe(elapsedMs: number): void {
    const perSecond = elapsedMs > 0 ? 1000 / elapsedMs : 0
    const rates = this.#ratePerSecond
    for (let i = 0; i < this.levels; i++) {
      rates[i] = 0.5 * (rates[i] ?? 0) + 0.5 * (this.arrivals[i] ?? 0) * perSecond
      this.arrivals[i] = 0
    }
  }

  /** Forgets the histogram, the capacity and the threshold. */
  reset(): void {
    this.arrivals.fill(0)
    this.#ratePerSecond.fill(0)
    this.#capacityPerSecond = 0
    this.#hold = 0
    this.#admitted = this.levels
  }

  #rateBelow(level: number): number {
    let sum = 0
    for (let i = 0; i < level; i++) sum += this.#ratePerSecond[i] ?? 0
    return sum
  }

  /** The most levels whose total rate stays within `target`. */
  #highestLevelWithin(target: number): number {
    let sum = 0
    for (let i = 0; i < this.levels; i++) {
      sum += this.#ratePerSecond[i] ?? 0
      if (sum > target) return i
    }
    return this.levels
  }

  /** The fewest levels whose total rate reaches `target` (all of them when none do). */
  #lowestLevelReaching(target: number): number {
    let sum = 0
    for (let i = 0; i < this.levels; i++) {
      sum += this.#ratePerSecond[i] ?? 0
      if (sum >= target) return i + 1
    }
    return this.levels
  }
}
