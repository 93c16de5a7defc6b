// Fastify as this package resolves it, for the root integration tests (the root has no fastify).
export { default as Fastify } from 'fastify'
