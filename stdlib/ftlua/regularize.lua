--- Regularization policies: callbacks that change weight decay as the train/eval gap moves.
local M = {}

--- Raises weight decay to `high` when eval loss exceeds train loss by more than `gap`
--- (overfitting), lowers it to `low` when the gap falls under `gap / 2` again. Options: low (0.01),
--- high (0.05), gap (0.3). `rule(state, metrics, current)` may replace the decision: return the
--- new weight decay or nil to keep it.
function M.weight_decay(opts)
  opts = opts or {}
  local low, high, gap = opts.low or 0.01, opts.high or 0.05, opts.gap or 0.3
  assert(low <= high, "regularize.weight_decay: low must not exceed high")
  local rule = opts.rule or function(state, metrics, current)
    if state.train_loss == nil or metrics.eval_loss == nil then return nil end
    local g = metrics.eval_loss - state.train_loss
    if g > gap and current < high then return high end
    if g < gap / 2 and current > low then return low end
  end
  return {
    name = opts.name or "regularize.weight_decay",
    on_eval_end = function(_, state, metrics)
      local wd = rule(state, metrics, state.weight_decay)
      if wd ~= nil and wd ~= state.weight_decay then return { weight_decay = wd } end
    end,
  }
end

return M
