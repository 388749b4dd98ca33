--- Learning-rate schedules. Each returns a function `(step, max_steps, warmup_steps) -> factor`
--- that the trainer multiplies with `learning_rate` before every optimizer step (`step` counts
--- from 0). `warmup_steps` defaults to the trainer's setting; the formulas are HF transformers'
--- `get_*_schedule_with_warmup`.
local M = {}

--- Linear warmup from 0 over the warmup steps, then `after(progress, step, max_steps, warmup)`
--- where progress runs from 0 (end of warmup) to 1 (max_steps).
local function with_warmup(opts, after)
  return function(step, max_steps, trainer_warmup)
    local warmup = opts.warmup_steps or trainer_warmup or 0
    if step < warmup then return step / math.max(1, warmup) end
    return after((step - warmup) / math.max(1, max_steps - warmup), step, max_steps, warmup)
  end
end

--- Linear warmup from 0, then constant.
function M.constant(opts)
  return with_warmup(opts or {}, function() return 1.0 end)
end

--- Linear warmup from 0, then linear decay to 0 at `max_steps`.
function M.linear(opts)
  return with_warmup(opts or {}, function(progress) return math.max(0.0, 1.0 - progress) end)
end

--- Linear warmup from 0, then half a cosine (or `num_cycles` half-waves) down to `min_ratio`.
function M.cosine(opts)
  opts = opts or {}
  local cycles = opts.num_cycles or 0.5
  local min_ratio = opts.min_ratio or 0.0
  return with_warmup(opts, function(progress)
    local factor = math.max(0.0, 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * progress)))
    return min_ratio + (1.0 - min_ratio) * factor
  end)
end

--- Alias kept for readability in recipes: `schedule.warmup_cosine { warmup_steps = 50 }`.
M.warmup_cosine = M.cosine

return M
