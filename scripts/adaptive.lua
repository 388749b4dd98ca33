-- The main recipe: fine-tune a byte-level T5 on the bundled invoice QA set.
--
--   ftlua run scripts/adaptive.lua
--   ftlua run scripts/adaptive.lua --set learning_rate=3e-4 --set max_steps=50
--
-- Every setting below can be overridden with --set; the policies (schedule, callbacks) are plain
-- Lua and can be replaced by your own.
local ft       = require "ftlua"
local schedule = require "ftlua.schedule"

-- One sample per question. Sources are "question: ... context: ..." in UTF-8 bytes; the longest
-- bundled invoice is 370 bytes, so nothing is cut at 384.
local data = ft.data.qa("examples/data/invoices.jsonl", { max_source_len = 384, max_target_len = 48 })
local train, eval = data:split { eval_fraction = 0.1, seed = 7 }   -- whole invoices on each side

local run = ft.trainer {
  model = ft.model.t5 { preset = "tiny" },
  train = train,
  eval = eval,
  learning_rate = 3e-3,
  weight_decay = 0.01,
  batch_size = 16,
  grad_accum = 1,
  max_steps = 5000,             -- an upper bound: max_seconds decides, and the schedule follows it
  max_seconds = 600,            -- the ten-minute budget on a 2-core CPU; the run stops there
  warmup_steps = 100,
  max_grad_norm = 1.0,
  log_every = 25,
  eval_every = 200,
  save_every = 200,
  save_total_limit = 2,
  best = { metric = "eval_exact_match", load_at_end = true },
  schedule = schedule.cosine { min_ratio = 0.05 },
}

-- A policy written inline: stop early once held-out answers are nearly all exact.
run:on("eval_end", function(state, metrics)
  if metrics.eval_exact_match >= 0.98 then
    return { stop = true, reason = ("exact match %.3f at step %d"):format(metrics.eval_exact_match, state.global_step) }
  end
end)

local result = run:fit()
print(("best %s %.4f at step %d; stopped: %s"):format(
  result.best.metric, result.best.value, result.best.step, result.stop_reason))
