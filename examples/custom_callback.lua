-- A callback written from scratch: keeps the three best evaluations by exact match, saves a
-- checkpoint whenever one enters the top three, and remembers them across a resume.
--   ftlua run examples/custom_callback.lua
local ft = require "ftlua"

local function top_k_by(metric, k)
  local cb = { name = "top_k(" .. metric .. ")", best = {} }    -- best: { {step=, value=}, ... }

  function cb:on_eval_end(state, metrics)
    local value = metrics[metric]
    table.insert(self.best, { step = state.global_step, value = value })
    table.sort(self.best, function(a, b) return a.value > b.value end)
    local entered = false
    for i = 1, math.min(k, #self.best) do
      if self.best[i].step == state.global_step then entered = true end
    end
    while #self.best > k do table.remove(self.best) end
    if entered then return { save = true } end                 -- a decision: Rust saves the checkpoint
  end

  function cb:on_train_end()
    for i, e in ipairs(self.best) do print(("top %d: step %d %s = %.4f"):format(i, e.step, metric, e.value)) end
  end

  function cb:state_dict() return { best = self.best } end       -- saved in every checkpoint
  function cb:load_state_dict(s) self.best = s.best end          -- restored by --resume
  return cb
end

local data = ft.data.qa("examples/data/invoices.jsonl", { max_source_len = 384, max_target_len = 48 })
local train, eval = data:split { eval_fraction = 0.02, seed = 7 }
local run = ft.trainer {
  model = ft.model.t5 { preset = "micro" },
  train = train, eval = eval,
  learning_rate = 3e-3, batch_size = 8, max_steps = 30, eval_every = 10, log_every = 10,
  callbacks = { top_k_by("eval_f1", 3) },
}
run:fit()
