--- Learning-rate schedules. Each returns a function `(step, max_steps, warmup_steps) -> factor`
--- that the trainer multiplies with `learning_rate` before every optimizer step (`step` counts
--- from 0). `warmup_steps` defaults to the trainer's setting; the formulas are HF transformers'
--- `get_*_schedule_with_warmup`.
local M = {}

local function warmup_of(opts, trainer_warmup)
  return opts.warmup_steps or trainer_warmup or 0
end

--- Linear warmup from 0, then constant.
function M.constant(opts)
  opts = opts or {}
  return function(step, _, trainer_warmup)
    local warmup = warmup_of(opts, trainer_warmup)
    if step < warmup then return step / math.max(1, warmup) end
    return 1.0
  end
end

--- Linear warmup from 0, then linear decay to 0 at `max_steps`.
function M.linear(opts)
  opts = opts or {}
  return function(step, max_steps, trainer_warmup)
    local warmup = warmup_of(opts, trainer_warmup)
    if step < warmup then return step / math.max(1, warmup) end
    return math.max(0.0, (max_steps - step) / math.max(1, max_steps - warmup))
  end
end

--- Linear warmup from 0, then half a cosine (or `num_cycles` half-waves) down to `min_ratio`.
function M.cosine(opts)
  opts = opts or {}
  local cycles = opts.num_cycles or 0.5
  local min_ratio = opts.min_ratio or 0.0
  return function(step, max_steps, trainer_warmup)
    local warmup = warmup_of(opts, trainer_warmup)
    if step < warmup then return step / math.max(1, warmup) end
    local progress = (step - warmup) / math.max(1, max_steps - warmup)
    local factor = math.max(0.0, 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * progress)))
    return min_ratio + (1.0 - min_ratio) * factor
  end
end

--- Alias kept for readability in recipes: `schedule.warmup_cosine { warmup_steps = 50 }`.
M.warmup_cosine = M.cosine

return M
