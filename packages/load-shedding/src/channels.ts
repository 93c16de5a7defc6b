/** `diagnostics_channel` names: one message per refused request, one per control step. */
export const SHED_CHANNEL = 'spillway:load-shedding:shed'
export const UPDATE_CHANNEL = 'spillway:load-shedding:update'
