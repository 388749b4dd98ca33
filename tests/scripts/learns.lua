-- A short real training run (micro T5, 40 steps) whose loss must fall; used by tests/cli.rs.
local ft = require "ftlua"
local schedule = require "ftlua.schedule"

local data = ft.data.qa("examples/data/invoices.jsonl", { max_source_len = 384, max_target_len = 48 })
local train, eval = data:split { eval_fraction = 0.01, seed = 3 }

local losses = {}
local run = ft.trainer {
  model = ft.model.t5 { preset = "micro" },
  train = train, eval = eval,
  learning_rate = 3e-3, batch_size = 8, max_steps = 40, warmup_steps = 5,
  log_every = 5, eval_every = 20, save_every = 20, save_total_limit = 1,
  best = { metric = "eval_loss" },
  schedule = schedule.linear(),
  -- Metrics written in Lua receive every generated answer and every reference.
  metrics = {
    answered = function(predictions, references)
      assert(#predictions == #references, "one prediction per reference")
      return #predictions
    end,
    nonempty_references = function(_, references)
      local n = 0
      for _, r in ipairs(references) do if #r > 0 then n = n + 1 end end
      return n / #references
    end,
  },
}
run:on("log", function(state) losses[#losses + 1] = state.train_loss end)
local result = run:fit()
print(("first_loss=%.4f last_loss=%.4f best_step=%d eval_loss=%.4f"):format(
  losses[1], losses[#losses], result.best.step, result.metrics.eval_loss))
local sample = eval:sample(1)
local answer = result.model:generate { question = sample.question, context = sample.context, max_new_tokens = 8 }
print(("model_weights=%s generated=%q"):format(result.model:info().weights, answer))
