--- Reusable callbacks. Each returns a callback table for `ft.trainer { callbacks = {...} }`; its
--- `on_<event>` methods return decisions and its state survives resume (`state_dict`).
local M = {}

local function direction(metric, mode)
  if mode then
    assert(mode == "min" or mode == "max", "mode must be \"min\" or \"max\", got " .. tostring(mode))
    return mode
  end
  return metric:find("loss") and "min" or "max"
end

local function finite(x) return x == x and x ~= math.huge and x ~= -math.huge end

--- Stops training when `metric` stops improving. Options (Lightning's EarlyStopping):
--- metric ("eval_loss"), patience (3 evaluations), min_delta (0), mode ("min" for losses, else
--- "max"), baseline (the value to beat), start_from (ignore evaluations before this step),
--- check_finite (true: stop on NaN/inf), stopping_threshold (stop once this good),
--- divergence_threshold (stop once this bad).
function M.early_stopping(opts)
  opts = opts or {}
  local metric = opts.metric or "eval_loss"
  if not metric:find("^eval_") then metric = "eval_" .. metric end
  local mode = direction(metric, opts.mode)
  local sign = mode == "min" and 1 or -1           -- compare in "lower is better" space
  local patience, min_delta = opts.patience or 3, math.abs(opts.min_delta or 0)
  local check_finite = opts.check_finite ~= false

  local cb = { name = opts.name or ("early_stopping(" .. metric .. ")"), best = nil, wait = 0 }
  if opts.baseline then cb.best = opts.baseline end

  function cb:on_eval_end(state, metrics)
    local value = metrics[metric]
    if value == nil then error(("early_stopping: no metric %q in the evaluation"):format(metric)) end
    if opts.start_from and state.global_step < opts.start_from then return end
    if check_finite and not finite(value) then
      return { stop = true, reason = ("%s is %s"):format(metric, tostring(value)) }
    end
    if opts.stopping_threshold and sign * value <= sign * opts.stopping_threshold then
      return { stop = true, reason = ("%s = %.4g reached the stopping threshold %.4g"):format(metric, value, opts.stopping_threshold) }
    end
    if opts.divergence_threshold and sign * value >= sign * opts.divergence_threshold then
      return { stop = true, reason = ("%s = %.4g diverged past %.4g"):format(metric, value, opts.divergence_threshold) }
    end
    if self.best == nil or sign * value < sign * self.best - min_delta then
      self.best, self.wait = value, 0
      return
    end
    self.wait = self.wait + 1
    if self.wait >= patience then
      return { stop = true, reason = ("%s did not improve on %.4g for %d evaluations"):format(metric, self.best, self.wait) }
    end
  end

  function cb:state_dict() return { best = self.best, wait = self.wait } end
  function cb:load_state_dict(s) self.best, self.wait = s.best, s.wait end
  return cb
end

--- Multiplies the learning rate by `factor` when `metric` has not improved for `patience`
--- evaluations (PyTorch's ReduceLROnPlateau, relative threshold): factor (0.1), patience (2),
--- cooldown (0), min_lr (0), threshold (1e-4), mode.
function M.reduce_lr_on_plateau(opts)
  opts = opts or {}
  local metric = opts.metric or "eval_loss"
  if not metric:find("^eval_") then metric = "eval_" .. metric end
  local mode = direction(metric, opts.mode)
  local factor, patience = opts.factor or 0.1, opts.patience or 2
  local cooldown, min_lr, threshold = opts.cooldown or 0, opts.min_lr or 0, opts.threshold or 1e-4
  assert(factor < 1, "reduce_lr_on_plateau: factor must be < 1")

  local cb = { name = opts.name or ("reduce_lr_on_plateau(" .. metric .. ")"), best = nil, bad = 0, cooldown_left = 0 }

  local function better(a, best)
    if best == nil then return true end
    if mode == "min" then return a < best * (1 - threshold) end
    return a > best * (1 + threshold)
  end

  function cb:on_eval_end(state, metrics)
    local value = metrics[metric]
    if value == nil then error(("reduce_lr_on_plateau: no metric %q in the evaluation"):format(metric)) end
    if better(value, self.best) then self.best, self.bad = value, 0 else self.bad = self.bad + 1 end
    if self.cooldown_left > 0 then
      self.cooldown_left = self.cooldown_left - 1
      self.bad = 0
    end
    if self.bad > patience then
      self.bad, self.cooldown_left = 0, cooldown
      local new_lr = math.max(state.lr * factor, min_lr)
      if state.lr - new_lr > 1e-12 then return { lr = new_lr } end
    end
  end

  function cb:state_dict() return { best = self.best, bad = self.bad, cooldown_left = self.cooldown_left } end
  function cb:load_state_dict(s) self.best, self.bad, self.cooldown_left = s.best, s.bad, s.cooldown_left end
  return cb
end

--- Keeps the k best checkpoints by `metric` (default "eval_loss"; mode as early_stopping) and
--- asks the trainer to delete the others as soon as they fall out of the top k. A checkpoint is
--- scored by the last evaluation at or before its step; one saved before any evaluation ranks
--- last. The newest checkpoint is kept until the next save (resume needs it), and the trainer
--- never deletes the best by `best.metric`.
function M.keep_top_k(opts)
  opts = opts or {}
  local k = opts.k or 3
  assert(math.type(k) == "integer" and k >= 1, "keep_top_k: k must be a whole number >= 1")
  local metric = opts.metric or "eval_loss"
  if not metric:find("^eval_") then metric = "eval_" .. metric end
  local sign = direction(metric, opts.mode) == "min" and 1 or -1

  local cb = { name = opts.name or ("keep_top_k(" .. metric .. ")"), last = nil, kept = {} }

  function cb:on_eval_end(_, metrics) self.last = metrics[metric] end

  function cb:on_save(state)
    self.kept[#self.kept + 1] = { step = state.global_step, score = self.last }
    -- Best first; unscored last; among equals the newer first.
    table.sort(self.kept, function(a, b)
      if (a.score == nil) ~= (b.score == nil) then return a.score ~= nil end
      if a.score ~= nil and a.score ~= b.score then return sign * a.score < sign * b.score end
      return a.step > b.step
    end)
    -- Outside the top k goes, except the checkpoint just saved: the newest is what a resume needs,
    -- so it waits until the next save to be judged again.
    local kept, dropped = {}, {}
    for rank, entry in ipairs(self.kept) do
      if rank <= k or entry.step == state.global_step then kept[#kept + 1] = entry else dropped[#dropped + 1] = entry.step end
    end
    self.kept = kept
    if #dropped > 0 then return { delete_checkpoints = dropped } end
  end

  function cb:state_dict() return { last = self.last, kept = self.kept } end
  function cb:load_state_dict(s) self.last, self.kept = s.last, s.kept end
  return cb
end

--- Prints every evaluation's metrics as one line (`print_fn` defaults to print).
function M.console(opts)
  opts = opts or {}
  local out = opts.print_fn or print
  local cb = { name = opts.name or "console" }
  function cb:on_eval_end(state, metrics)
    local names = {}
    for k in pairs(metrics) do names[#names + 1] = k end
    table.sort(names)
    local parts = {}
    for _, k in ipairs(names) do parts[#parts + 1] = ("%s=%.4f"):format(k, metrics[k]) end
    out(("[eval] step %d epoch %.2f %s"):format(state.global_step, state.epoch, table.concat(parts, " ")))
  end
  return cb
end

return M
