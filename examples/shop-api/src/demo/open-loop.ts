// The overload benchmark's generator, re-exported so that tests outside this package (the root
// test/ directory cannot resolve this package's dependencies) drive the demo with the same code.
export { measureCapacity, quantile, runOpenLoop, type Phase, type PhaseResult, type RequestKind } from '@spillway/overload-bench/open-loop'
