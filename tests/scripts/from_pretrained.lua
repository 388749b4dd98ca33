-- Fine-tunes a checkpoint saved by HF transformers (the tiny golden T5) for two steps.
local ft = require "ftlua"
local data = ft.data.qa("examples/data/invoices.jsonl", { max_source_len = 128, max_target_len = 16 })
local train, eval = data:split { eval_fraction = 0.01, seed = 3 }
local model = ft.model.load("tests/golden/t5/relu")
print(("loaded d_model=%d parameters=%d"):format(model:info().config.d_model, model:info().parameters))
local run = ft.trainer { model = model, train = train, eval = eval, batch_size = 2, max_steps = 2, max_new_tokens = 2 }
local result = run:fit()
print(("steps=%d eval_loss=%.4f"):format(result.global_step, result.metrics.eval_loss))
