--- Fit diagnosis: from a run's history (the log and eval records of metrics.jsonl), a verdict —
--- "diverging", "overfitting", "underfitting" or "fine" — with its evidence and the advice of
--- fine-tuning practice. ftlua prints it at the end of every run.
local M = {}

M.advice = {
  diverging = {
    "lower the learning rate (e.g. by 3-10x) and keep warmup",
    "keep gradient clipping on (max_grad_norm = 1.0)",
    "check the data for broken samples",
  },
  overfitting = {
    "raise weight decay (e.g. 0.01 -> 0.05)",
    "stop early: callbacks.early_stopping { metric = \"eval_loss\", patience = 3 }",
    "augment the data (e.g. OCR-style noise)",
    "use a smaller model, or more data",
  },
  underfitting = {
    "raise the learning rate (e.g. 1e-5 -> 5e-5 for pretrained models)",
    "train longer (more epochs or steps)",
    "use a larger model",
    "lower weight decay",
    "check that inputs are not truncated (the data report before training)",
  },
  fine = { "keep the best checkpoint (best = { metric = ..., load_at_end = true })" },
}

local function finite(x) return x == x and x ~= math.huge and x ~= -math.huge end

local function series(history, event, key)
  local out = {}
  for _, r in ipairs(history) do
    if r.event == event and r[key] ~= nil then out[#out + 1] = { step = r.step, value = r[key] } end
  end
  return out
end

local function min_of(points)
  local best
  for _, p in ipairs(points) do if best == nil or p.value < best.value then best = p end end
  return best
end

--- Options: overfit_rise (0.05: eval loss this far above its minimum), gap (0.5: eval minus train
--- loss), still_improving (0.1: train loss fell this much over the last third), diverge_factor (1.5).
---@return {verdict: string, evidence: string[], advice: string[]}
function M.verdict(history, opts)
  opts = opts or {}
  local train = series(history, "log", "loss")
  local eval = series(history, "eval", "eval_loss")
  local evidence = {}
  local function result(verdict)
    return { verdict = verdict, evidence = evidence, advice = M.advice[verdict] }
  end
  if #train == 0 then
    evidence[1] = "no training loss was logged"
    return result("fine")
  end
  for _, points in ipairs { train, eval } do
    for _, p in ipairs(points) do
      if not finite(p.value) then
        evidence[#evidence + 1] = ("loss %s at step %d"):format(tostring(p.value), p.step)
        return result("diverging")
      end
    end
  end
  local first, last, lowest = train[1], train[#train], min_of(train)
  if #train >= 3 and last.value > (opts.diverge_factor or 1.5) * lowest.value then
    evidence[#evidence + 1] = ("train loss rose to %.4g at step %d from %.4g at step %d"):format(last.value, last.step, lowest.value, lowest.step)
    return result("diverging")
  end
  if #eval >= 2 then
    local best, final = min_of(eval), eval[#eval]
    if final.value > best.value * (1 + (opts.overfit_rise or 0.05)) and last.value <= lowest.value * 1.05 then
      evidence[#evidence + 1] = ("eval loss rose from %.4g (step %d) to %.4g (step %d) while train loss kept falling to %.4g")
        :format(best.value, best.step, final.value, final.step, last.value)
      return result("overfitting")
    end
  end
  if #eval >= 1 and eval[#eval].value - last.value > (opts.gap or 0.5) then
    evidence[#evidence + 1] = ("eval loss %.4g is %.4g above train loss %.4g"):format(eval[#eval].value, eval[#eval].value - last.value, last.value)
    return result("overfitting")
  end
  local third = train[math.max(1, math.floor(#train * 2 / 3))]
  local recent_drop = (third.value - last.value) / math.max(third.value, 1e-12)
  if #train >= 3 and recent_drop > (opts.still_improving or 0.1) then
    evidence[#evidence + 1] = ("train loss still fell %.0f%% over the last third of the run (%.4g -> %.4g)"):format(100 * recent_drop, third.value, last.value)
    return result("underfitting")
  end
  if last.value > 0.8 * first.value then
    evidence[#evidence + 1] = ("train loss barely moved: %.4g -> %.4g"):format(first.value, last.value)
    return result("underfitting")
  end
  evidence[#evidence + 1] = ("train loss %.4g -> %.4g, converged; eval tracks it"):format(first.value, last.value)
  return result("fine")
end

--- The verdict as the lines printed at the end of a run.
function M.format(v)
  local lines = { "diagnosis: " .. v.verdict }
  for _, e in ipairs(v.evidence) do lines[#lines + 1] = "  evidence: " .. e end
  for _, a in ipairs(v.advice) do lines[#lines + 1] = "  try: " .. a end
  return table.concat(lines, "\n")
end

return M
