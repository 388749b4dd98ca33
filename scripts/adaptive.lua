-- The main recipe: train a byte-level T5 from scratch on the bundled invoice QA set, within a
-- ten-minute budget on a 2-core CPU, adapting the batch when memory runs out.
--
--   ftlua run scripts/adaptive.lua
--   ftlua run scripts/adaptive.lua --set learning_rate=3e-4 --set max_steps=50
--
-- Every setting below can be overridden with --set; the policies (schedule, callbacks, the
-- inline stop rule) are plain Lua and can be replaced by your own.
local ft       = require "ftlua"
local schedule = require "ftlua.schedule"
local oom      = require "ftlua.oom"
local cb       = require "ftlua.callbacks"

-- One sample per question. Sources are "question: ... context: ..." in UTF-8 bytes; the longest
-- bundled invoice prompt is 370 bytes, so nothing is cut at 384 (the data report says so).
local data = ft.data.qa("examples/data/invoices.jsonl", { max_source_len = 384, max_target_len = 48 })
local train, eval = data:split { eval_fraction = 0.1, seed = 7 }   -- whole invoices on each side

local run = ft.trainer {
  -- 2+2 layers, d_model 128. Two heads of 64 rather than four of 32: the same parameters, half the
  -- attention-score work per byte, which on a CPU means ~1.5x more samples per second.
  model = ft.model.t5 { preset = "tiny", num_layers = 2, num_decoder_layers = 2, num_heads = 2, d_kv = 64 },
  train = train,
  eval = eval,
  learning_rate = 2e-3,
  adam_beta2 = 0.98,
  weight_decay = 0.01,
  warmup_steps = 100,
  max_grad_norm = 1.0,
  -- A batch of 32 does not fit in the 600 MiB budget below: the first out-of-memory error halves
  -- it to 16 with accumulation 2, so the effective batch (and the training) stays the same.
  batch_size = 32,
  grad_accum = 1,
  max_memory = "600MiB",
  max_steps = 5000,             -- an upper bound: max_seconds decides, and the schedule follows it
  max_seconds = 600,            -- the ten-minute budget; the cosine decay is fitted to it
  log_every = 25,
  eval_every = 200,
  save_every = 200,
  save_total_limit = 2,
  best = { metric = "eval_loss", load_at_end = true },
  schedule = schedule.cosine { min_ratio = 0.05 },
  callbacks = {
    oom.halve_batch { keep_effective_batch = true },
    cb.early_stopping { metric = "eval_loss", patience = 4, min_delta = 1e-3 },
  },
}

-- A policy written inline: stop early once held-out answers are nearly all exact.
run:on("eval_end", function(state, metrics)
  if metrics.eval_exact_match >= 0.98 then
    return { stop = true, reason = ("exact match %.3f at step %d"):format(metrics.eval_exact_match, state.global_step) }
  end
end)

local result = run:fit()
print(("best %s %.4f at step %d; final exact match %.4f, F1 %.4f; stopped: %s"):format(
  result.best.metric, result.best.value, result.best.step,
  result.metrics.eval_exact_match, result.metrics.eval_f1, result.stop_reason))
