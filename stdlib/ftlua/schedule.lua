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

--- Linear warmup from 0, then `num_cycles` (default 1) cosine decays to 0, each restarting at 1.
function M.cosine_restarts(opts)
  opts = opts or {}
  local cycles = opts.num_cycles or 1
  return with_warmup(opts, function(progress)
    if progress >= 1.0 then return 0.0 end
    return math.max(0.0, 0.5 * (1.0 + math.cos(math.pi * ((cycles * progress) % 1.0))))
  end)
end

--- Linear warmup from 0, then polynomial decay `(1 - progress)^power` (power default 1) from 1
--- down to `end_ratio` (default 0) at max_steps, and `end_ratio` after.
function M.polynomial(opts)
  opts = opts or {}
  local power, end_ratio = opts.power or 1.0, opts.end_ratio or 0.0
  return with_warmup(opts, function(progress)
    if progress > 1.0 then return end_ratio end
    return (1.0 - end_ratio) * (1.0 - progress) ^ power + end_ratio
  end)
end

--- Linear warmup from 0, then `1 / sqrt((step + timescale - warmup) / timescale)`: the decay of
--- the original Transformer. `timescale` defaults to the warmup steps (10000 without warmup).
function M.inverse_sqrt(opts)
  opts = opts or {}
  return with_warmup(opts, function(_, step, _, warmup)
    local timescale = opts.timescale or (warmup > 0 and warmup or 10000)
    return 1.0 / math.sqrt((step + timescale - warmup) / timescale)
  end)
end

local wsd_shapes = {
  linear = { warmup = function(p) return p end, decay = function(p) return 1.0 - p end },
  cosine = {
    warmup = function(p) return 0.5 * (1.0 - math.cos(math.pi * p)) end,
    decay = function(p, cycles) return 0.5 * (1.0 + math.cos(math.pi * cycles * 2.0 * p)) end,
  },
  ["1-sqrt"] = { warmup = function(p) return 1.0 - math.sqrt(1.0 - p) end, decay = function(p) return 1.0 - math.sqrt(p) end },
}

--- Warmup-stable-decay: warm up (from `min_ratio`), hold at 1, then decay to `min_ratio` over
--- the last `decay_steps` (or `decay_fraction` of max_steps, default 0.1) and stay there.
--- warmup_type and decay_type: "linear", "cosine" (default for decay) or "1-sqrt".
function M.wsd(opts)
  opts = opts or {}
  local min_ratio, cycles = opts.min_ratio or 0.0, opts.num_cycles or 0.5
  local warmup_shape = wsd_shapes[opts.warmup_type or "linear"]
  local decay_shape = wsd_shapes[opts.decay_type or "cosine"]
  assert(warmup_shape and decay_shape, "schedule.wsd: warmup_type and decay_type are linear, cosine or 1-sqrt")
  return function(step, max_steps, trainer_warmup)
    local warmup = opts.warmup_steps or trainer_warmup or 0
    local decay = opts.decay_steps or math.floor((opts.decay_fraction or 0.1) * max_steps + 0.5)
    local stable = opts.stable_steps or math.max(0, max_steps - warmup - decay)
    local factor
    if step < warmup then
      factor = warmup_shape.warmup(step / math.max(1, warmup))
    elseif step < warmup + stable then
      return 1.0
    elseif step < warmup + stable + decay then
      factor = decay_shape.decay((step - warmup - stable) / math.max(1, decay), cycles)
    else
      return min_ratio
    end
    return math.max(0.0, factor * (1.0 - min_ratio) + min_ratio)
  end
end

return M
