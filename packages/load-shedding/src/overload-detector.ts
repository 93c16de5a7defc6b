/**
 * One overload signal, read once per control step: whether it says the server is overloaded, and
 * how far past its limit (1 = just at it), which sizes the cut. One small class per signal, each
 * with its own `sample` taking what that signal reads; `OverloadSignals` combines them.
 */
export interface OverloadDetector {
  readonly overloaded: boolean
  readonly severity: number
}
