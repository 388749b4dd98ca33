--- Out-of-memory policies. When a step runs out of memory, Rust frees what the attempt held and
--- fires `oom` with `info` = {phase, batch_size, grad_accum, max_source_len, resident_bytes,
--- message}; these callbacks answer with a smaller batch, and the same samples are retried with
--- optimizer, schedule and data position unchanged. Without any policy, ftlua halves the batch and
--- doubles accumulation. Evaluation OOMs shrink only the eval batch, in Rust.
local M = {}

--- Halves the batch (never below `min_batch`); with `keep_effective_batch` (default) raises
--- accumulation so that batch × accumulation does not shrink. At the floor, if `shrink_length` is
--- allowed, it cuts prompts to 3/4 of the longest that failed (never below `min_length`, 64 by
--- default; answers cut out of their context are reported); otherwise it stops the run, which
--- saves the last completed step first.
function M.halve_batch(opts)
  opts = opts or {}
  local min_batch = opts.min_batch or 1
  local min_length = opts.min_length or 64
  local keep = opts.keep_effective_batch ~= false
  return {
    name = opts.name or "oom.halve_batch",
    on_oom = function(_, _, info)
      if info.phase ~= "train" then return end
      local batch = info.batch_size
      if batch <= min_batch then
        if opts.shrink_length and info.max_source_len > min_length then
          return { max_source_len = math.max(min_length, info.max_source_len * 3 // 4) }
        end
        return { stop = true, reason = ("out of memory at the minimum batch of %d"):format(min_batch) }
      end
      local smaller = math.max(min_batch, math.ceil(batch / 2))
      local accum = info.grad_accum
      if keep then accum = math.ceil(info.grad_accum * batch / smaller) end
      return { batch_size = smaller, grad_accum = accum }
    end,
  }
end

--- Grows the batch back toward where it started after `after` clean steps (default 200) since the
--- last out-of-memory error, doubling it and halving accumulation (the effective batch is kept);
--- if memory runs out again, the `oom` policy shrinks it, and the probe waits another `after` steps.
function M.grow_back(opts)
  opts = opts or {}
  local after = opts.after or 200
  local cb = { name = opts.name or "oom.grow_back", clean = 0, target = nil, hit = false }
  function cb:on_train_begin(state) self.target = self.target or state.batch_size end
  function cb:on_oom() self.hit = true end
  function cb:on_step_end(state)
    if self.hit then                                   -- the step that ran out does not count
      self.clean, self.hit = 0, false
      return
    end
    self.clean = self.clean + 1
    local limit = opts.max_batch or self.target
    if self.clean >= after and state.batch_size < limit and state.grad_accum % 2 == 0 then
      self.clean = 0
      return { batch_size = math.min(limit, state.batch_size * 2), grad_accum = state.grad_accum // 2 }
    end
  end
  function cb:state_dict() return { clean = self.clean, target = self.target } end
  function cb:load_state_dict(s) self.clean, self.target = s.clean, s.target end
  return cb
end

--- Before training, finds the largest micro-batch that fits (doubling, then bisecting, on the
--- longest samples, up to `max_batch` and the effective batch) and trains with it, raising
--- accumulation so that batch × accumulation stays what the settings say.
function M.find_batch_size(opts)
  opts = opts or {}
  return {
    name = opts.name or "oom.find_batch_size",
    on_train_begin = function() return { find_batch_size = opts.max_batch or 4096 } end,
  }
end

return M
