-- Writes the main recipe's train/eval split (the same call as scripts/adaptive.lua) to
-- bench/data/, so that the HF baseline trains and evaluates on exactly the same samples.
--   ftlua run bench/export_split.lua
local ft = require "ftlua"
local data = ft.data.qa("examples/data/invoices.jsonl", { max_source_len = 384, max_target_len = 48 })
local train, eval = data:split { eval_fraction = 0.1, seed = 7 }
os.execute("mkdir -p bench/data")
train:write_jsonl("bench/data/train.jsonl")
eval:write_jsonl("bench/data/eval.jsonl")
print(("wrote %d train and %d eval samples to bench/data/"):format(#train, #eval))
