// Fastify and the shared meter's Fastify mount as this package resolves them, for the root
// integration tests (the root has no fastify).
export { default as Fastify } from 'fastify'
export { meterFastify } from '@spillway/latency-window/fastify'
