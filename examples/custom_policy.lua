-- A regularization policy written from scratch, inline with run:on: when the model starts to
-- overfit (eval loss rises while train loss falls), raise weight decay 0.01 -> 0.05; if eval loss
-- keeps rising at the higher decay, halve the learning rate as well.
--   ftlua run examples/custom_policy.lua
local ft = require "ftlua"

local data = ft.data.qa("examples/data/invoices.jsonl", { max_source_len = 384, max_target_len = 48 })
local train, eval = data:split { eval_fraction = 0.02, seed = 7 }
local run = ft.trainer {
  model = ft.model.t5 { preset = "micro" },
  train = train, eval = eval,
  learning_rate = 3e-3, weight_decay = 0.01, batch_size = 8, max_steps = 30, eval_every = 10, log_every = 10,
}

local previous_eval, previous_train
run:on("eval_end", function(state, metrics)
  local decision
  if previous_eval and metrics.eval_loss > previous_eval and state.train_loss < previous_train then
    if state.weight_decay < 0.05 then
      decision = { weight_decay = 0.05 }
    else
      decision = { lr = state.lr / 2 }
    end
  end
  previous_eval, previous_train = metrics.eval_loss, state.train_loss
  return decision                                  -- nil: carry on unchanged
end)

local result = run:fit()
print(("final weight decay %.2f, lr %.2e"):format(result.state.weight_decay, result.state.lr))
