-- K-fold cross-validation of the main recipe's model on the bundled invoice set: three trainings,
-- each holding out a third of the invoices (whole invoices: no document on both sides), then the
-- mean ± std of every eval metric. Each fold trains for FOLD_SECONDS (default 120) seconds.
--
--   ftlua run scripts/kfold.lua
--   FOLD_SECONDS=30 ftlua run scripts/kfold.lua --set max_new_tokens=32
--
-- Results: runs/kfold/fold-<i>/ (one run directory per fold) and runs/kfold/summary.json;
-- `ftlua report runs/kfold` prints the table again and plots the folds.
local ft = require "ftlua"
local schedule = require "ftlua.schedule"
local tune = require "ftlua.tune"

local data = ft.data.qa("examples/data/invoices.jsonl", { max_source_len = 384, max_target_len = 48 })
local seconds = tonumber(os.getenv("FOLD_SECONDS") or "120")

local result = tune.kfold {
  data = data, k = 3, seed = 7,
  build = function(fold)
    local spec = {
      model = ft.model.t5 { preset = "tiny", num_layers = 2, num_decoder_layers = 2, num_heads = 2, d_kv = 64 },
      train = fold.train, eval = fold.eval,
      learning_rate = 2e-3, adam_beta2 = 0.98, weight_decay = 0.01, warmup_steps = 50,
      batch_size = 16, grad_accum = 2, max_steps = 5000, max_seconds = seconds,
      log_every = 25, eval_every = 0, save_every = 0, max_new_tokens = 48,
      schedule = schedule.cosine { min_ratio = 0.05 },
    }
    for k, v in pairs(fold.settings) do spec[k] = v end
    return ft.trainer(spec)
  end,
}
local em = result.metrics.eval_exact_match
print(("exact match over %d folds: %.4f ± %.4f"):format(#em.values, em.mean, em.std))
