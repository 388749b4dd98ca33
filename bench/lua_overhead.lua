-- The cost of Lua in the training loop: the main recipe's model and batch for 60 steps, with
-- (HOOKS=1) or without a no-op handler on every one of the 14 events.
--   bench/lua_overhead.sh   (alternates both kinds of run and prints medians and their ratio)
local ft = require "ftlua"

local data = ft.data.qa("examples/data/invoices.jsonl", { max_source_len = 384, max_target_len = 48 })
local train = data:split { eval_fraction = 0.1, seed = 7 }
local run = ft.trainer {
  model = ft.model.t5 { preset = "tiny", num_layers = 2, num_decoder_layers = 2, num_heads = 2, d_kv = 64 },
  train = train,
  batch_size = 16, grad_accum = 2, max_steps = 60, log_every = 1000, report_to = "none",
}
local calls = 0
if os.getenv("HOOKS") == "1" then
  for _, event in ipairs { "train_begin", "epoch_begin", "step_begin", "substep_end", "pre_optimizer_step",
      "step_end", "log", "eval_begin", "eval_end", "save", "oom", "nan", "epoch_end", "train_end" } do
    run:on(event, function() calls = calls + 1 end)
  end
end
local result = run:fit()
print(("hooks=%s calls=%d step_seconds=%.4f"):format(os.getenv("HOOKS") or "0", calls, result.state.step_seconds))
