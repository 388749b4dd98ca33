-- Augmentation inside training: 8 samples, batch 4, 3 epochs. Records every call of the augment
-- function and prints how many there were, whether each epoch drew anew, and the tokens trained on.
local ft = require "ftlua"

local items = {}
for i = 1, 8 do
  items[i] = { question = "Total " .. i .. "?", context = ("Invoice %d total: %d.00 USD"):format(i, 100 * i), answer = tostring(100 * i) }
end
local data = ft.data.from_table(items)

local draws = {}
local function shorten(sample, rng)
  draws[#draws + 1] = rng:random()
  sample.context = sample.context:sub(1, 10) -- visible in the tokens trained on
  return sample
end

local run = ft.trainer {
  model = ft.model.t5 { preset = "micro" },
  train = data, batch_size = 4, epochs = 3, log_every = 100, seed = 3,
  augment = os.getenv("AUGMENT") == "1" and shorten or nil,
}
local result = run:fit()
local redrawn = #draws == 24
for i = 1, 8 do
  redrawn = redrawn and draws[i] ~= draws[8 + i] and draws[8 + i] ~= draws[16 + i]
end
print(("augment calls=%d redrawn=%s first=%.6f tokens=%d"):format(#draws, tostring(redrawn), draws[1] or 0, result.state.tokens_seen))
