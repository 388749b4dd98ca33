-- A callback that stops training at step 3 by returning {stop = true}; used by tests/cli.rs.
local ft = require "ftlua"

local data = ft.data.qa("examples/data/invoices.jsonl", { max_source_len = 384, max_target_len = 48 })
local train, eval = data:split { eval_fraction = 0.01, seed = 1 }

local stopper = {
  name = "stop_at_three",
  on_step_end = function(self, state)
    if state.global_step == 3 then
      return { stop = true, reason = "test callback: enough at step 3" }
    end
  end,
}

local run = ft.trainer {
  model = ft.model.t5 { preset = "micro" },
  train = train, eval = eval,
  batch_size = 4, max_steps = 100, log_every = 1, max_new_tokens = 4,
  callbacks = { stopper },
}
local result = run:fit()
print(("stopped at step %d: %s"):format(result.global_step, result.stop_reason))
