package.path = "tests/lua/?.lua;" .. package.path
-- Spec for a model with an HF tokenizer.json: training encodes the data with it, every checkpoint
-- carries it, and a loaded checkpoint generates with it.
local ft = require "ftlua"
local t = require "spec"

local json = "tests/golden/tokenizer/tokenizer.json"
local root = os.tmpname()
os.remove(root)

local items = {}
for i = 1, 8 do
  items[i] = { question = "What is the total?", context = ("INVOICE %d Total: $%d.00"):format(i, 100 * i), answer = ("$%d.00"):format(100 * i) }
end
local data = ft.data.from_table(items)
local model = ft.model.t5 { preset = "micro", tokenizer = json }
local result = ft.trainer {
  model = model, train = data, eval = data, max_steps = 2, batch_size = 4, log_every = 100,
  max_new_tokens = 4, output_dir = root,
}:fit()
local run = ft.json.decode(io.open(root .. "/run.json"):read("a"))
local bytes = #data:sample(1).prompt + 1
t.equal(run.data.train.source_tokens.max < bytes, true,
  ("prompts are counted in the tokenizer's pieces (%d), not bytes (%d)"):format(run.data.train.source_tokens.max, bytes))
t.equal(io.open(result.model:info().weights .. "/tokenizer.json") ~= nil, true, "the checkpoint carries tokenizer.json")
local loaded = ft.model.load(result.model:info().weights)
t.equal(type(loaded:generate { question = "What is the total?", context = "Total: $5.00", max_new_tokens = 4 }), "string", "generate")
local ok, err = pcall(ft.model.t5, { preset = "micro", vocab_size = 100, tokenizer = json })
t.equal(ok, false, "a vocabulary too small for the tokenizer")
t.equal(tostring(err):find("set vocab_size = %d+ or more") ~= nil, true, tostring(err))
os.execute(("rm -rf %q"):format(root))
t.done("tokenizer")
