-- Short micro-T5 runs for the out-of-memory tests in tests/cli.rs. The environment chooses the
-- starting batch (BATCH, ACCUM), the policy (POLICY = "retry_same" keeps the batch and retries)
-- and, through FTLUA_INJECT_OOM, which batches fail.
local ft = require "ftlua"
local oom = require "ftlua.oom"

local data = ft.data.qa("examples/data/invoices.jsonl", { max_source_len = 384, max_target_len = 48 })
local train, eval = data:split { eval_fraction = 0.01, seed = 11 }

local events = {}
local recorder = { name = "recorder" }
function recorder:on_oom(state, info)
  events[#events + 1] = info
  if os.getenv("POLICY") == "retry_same" then return { batch_size = info.batch_size } end
end

local callbacks = { recorder }
if os.getenv("FIND") then callbacks[#callbacks + 1] = oom.find_batch_size { max_batch = 64 } end
if os.getenv("POLICY") ~= "retry_same" then
  callbacks[#callbacks + 1] = oom.halve_batch { shrink_length = os.getenv("SHRINK") ~= nil, min_length = 64 }
end

-- With MAX_MEMORY the model is the main recipe's, whose activations are big enough for a real cap.
local model = os.getenv("MAX_MEMORY")
  and ft.model.t5 { preset = "tiny", num_layers = 2, num_decoder_layers = 2, num_heads = 2, d_kv = 64 }
  or ft.model.t5 { preset = "micro" }

local run = ft.trainer {
  model = model,
  max_memory = os.getenv("MAX_MEMORY"),
  train = train, eval = eval,
  learning_rate = 2e-3, batch_size = tonumber(os.getenv("BATCH")), grad_accum = tonumber(os.getenv("ACCUM") or "1"),
  max_steps = 6, log_every = 1, eval_batch_size = 8, max_new_tokens = 4,
  callbacks = callbacks,
}
local result = run:fit()
local rss = {}
for i, e in ipairs(events) do rss[i] = e.resident_bytes end
print(("steps=%d samples=%d batch=%dx%d eval_batch=%d loss=%.6f ooms=%d"):format(
  result.global_step, result.state.samples_seen, result.state.batch_size, result.state.grad_accum,
  result.state.eval_batch_size, result.state.train_loss, #events))
print("rss=" .. table.concat(rss, ","))
