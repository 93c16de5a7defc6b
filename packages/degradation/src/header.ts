/** The response header listing the features a response was served without (by fallback). */
export const DEGRADED_HEADER = 'Spillway-Degraded'
