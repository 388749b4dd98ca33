-- ftlua's side of bench/throughput.py: trains the T5 of BENCH_CONFIG (a JSON file of T5 config
-- fields plus max_source_len / max_target_len) on the bundled invoices for BENCH_STEPS steps of
-- BENCH_BATCH samples, logging every step (metrics.jsonl's "time" stamps are what the harness
-- times). HOOKS=1 adds a no-op Lua handler on every event.
local ft = require "ftlua"

local path = assert(os.getenv("BENCH_CONFIG"), "BENCH_CONFIG is not set")
local config = ft.json.decode(io.open(path):read("a"))
local source_len, target_len = config.max_source_len, config.max_target_len
config.max_source_len, config.max_target_len = nil, nil
local data = ft.data.qa("examples/data/invoices.jsonl", { max_source_len = source_len, max_target_len = target_len })
local run = ft.trainer {
  model = ft.model.t5(config),
  train = data,
  learning_rate = 1e-3, weight_decay = 0.01, max_grad_norm = 1.0,
  batch_size = tonumber(os.getenv("BENCH_BATCH")), max_steps = tonumber(os.getenv("BENCH_STEPS")),
  log_every = 1, eval_every = 0, save_every = 0, report_to = "none", seed = 42,
}
if os.getenv("HOOKS") == "1" then
  for _, event in ipairs { "train_begin", "epoch_begin", "step_begin", "substep_end", "pre_optimizer_step",
      "step_end", "log", "eval_begin", "eval_end", "save", "oom", "nan", "epoch_end", "train_end" } do
    run:on(event, function() end)
  end
end
run:fit()
