-- Staged hyper-parameter search in the order fine-tuning practice recommends: learning rate
-- first, then batch size / gradient accumulation, then eval/save frequency, then weight decay;
-- each stage tries its values on top of the best settings so far. Each trial trains for
-- TRIAL_SECONDS (default 60) seconds; the best is chosen by eval loss.
--
--   ftlua run scripts/tune.lua
--
-- Results: runs/tune/<stage>-<i>/ per trial and runs/tune/summary.json; `ftlua report runs/tune`.
local ft = require "ftlua"
local schedule = require "ftlua.schedule"
local tune = require "ftlua.tune"

local data = ft.data.qa("examples/data/invoices.jsonl", { max_source_len = 384, max_target_len = 48 })
local train, eval = data:split { eval_fraction = 0.05, seed = 7 }
local seconds = tonumber(os.getenv("TRIAL_SECONDS") or "60")

local result = tune.staged {
  metric = "eval_loss",
  base = {
    learning_rate = 1e-3, batch_size = 16, grad_accum = 2, weight_decay = 0.01, warmup_steps = 50,
    adam_beta2 = 0.98, max_steps = 5000, max_seconds = seconds, log_every = 25,
    eval_every = 100, save_every = 0, max_new_tokens = 48,
    best = { metric = "eval_loss" },
  },
  space = {
    learning_rate = { 5e-4, 2e-3, 5e-3 },
    batch = { { 8, 2 }, { 32, 1 } },
    frequency = { 50 },
    weight_decay = { 0.0, 0.05 },
  },
  build = function(settings)
    settings.model = ft.model.t5 { preset = "tiny", num_layers = 2, num_decoder_layers = 2, num_heads = 2, d_kv = 64 }
    settings.train, settings.eval = train, eval
    settings.schedule = schedule.cosine { min_ratio = 0.05 }
    return ft.trainer(settings)
  end,
}
print(("best settings: learning_rate %g, batch %d x %d, eval_every %d, weight_decay %g (eval loss %.4f)"):format(
  result.best.learning_rate, result.best.batch_size, result.best.grad_accum, result.best.eval_every,
  result.best.weight_decay, result.score))
