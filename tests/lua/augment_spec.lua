package.path = "tests/lua/?.lua;" .. package.path
-- Spec for ftlua.augment and the dataset functions augmentation builds on (map, from_table, kfold, rng).
local ft = require "ftlua"
local augment = require "ftlua.augment"
local t = require "spec"

-- A stream that replays fixed draws makes each transform's effect exact.
local function replay(draws)
  local i = 0
  return { random = function() i = i + 1; return draws[(i - 1) % #draws + 1] end }
end
local sample = { question = "Total?", context = "T0tal 15 A", answer = "15" }

local cases = {
  -- transform, draws, expected context
  { augment.confuse { p = 0.5 }, { 0.1 }, "TOta1 lS A" },        -- every confusable swaps
  { augment.confuse { p = 0.5 }, { 0.9 }, "T0tal 15 A" },        -- none does
  { augment.drop { p = 0.5 }, { 0.9, 0.1 }, "Ttl 5 " },          -- every other non-space char dropped
  { augment.double { p = 0.5 }, { 0.1 }, "TT00ttaall 1155 AA" },
  { augment.whitespace { p = 0.5 }, { 0.1 }, "T0tal15A" },       -- spaces lost (u < p/2)
  { augment.whitespace { p = 0.5 }, { 0.4 }, "T0tal  15  A" },   -- spaces doubled (p/2 <= u < p)
  { augment.drop { p = 1, fields = { "answer" } }, { 0.0 }, "T0tal 15 A" }, -- context untouched...
}
for i, c in ipairs(cases) do
  local transform, draws, expected = table.unpack(c)
  local out = transform(sample, replay(draws))
  t.equal(out.context, expected, ("augment case %d"):format(i))
  t.equal(out.question, sample.question, ("augment case %d keeps the question"):format(i))
end
t.equal(augment.drop { p = 1, fields = { "answer" } }(sample, replay { 0 }).answer, "", "...the answer is dropped when asked")
t.equal(sample.context, "T0tal 15 A", "transforms do not modify their input")
local both = augment.compose(augment.confuse { p = 1 }, augment.double { p = 1, fields = { "question" } })
local composed = both(sample, replay { 0 })
t.equal(composed.context .. "|" .. composed.question, "TOta1 lS A|TToottaall??", "compose applies in order")
local chinese = augment.double { p = 1 } ({ question = "q", context = "总额", answer = "a" }, replay { 0 })
t.equal(chinese.context, "总总额额", "works on UTF-8 characters, not bytes")
t.equal(pcall(augment.drop, { p = 2 }), false, "p outside [0, 1] is refused")

-- The trainer's stream: seeded, reproducible; a full ocr_noise keeps most of the text.
local a, b = ft.data.rng(7), ft.data.rng(7)
t.equal(a:random(), b:random(), "same seed, same draws")
local die = a:random(6)
t.equal(die >= 1 and die <= 6 and math.type(die) == "integer", true, "rng:random(n) is an integer in [1, n]")
t.equal(pcall(function() return a:random(3, 1) end), false, "an empty interval is an error")
local data = ft.data.qa("examples/data/invoices.jsonl")
local noisy = augment.ocr_noise()(data:sample(1), ft.data.rng(1))
t.equal(noisy.answer, data:sample(1).answer, "ocr_noise leaves the answer alone")
t.equal(noisy.context ~= data:sample(1).context, true, "ocr_noise changes the context")
t.equal(math.abs(#noisy.context - #data:sample(1).context) < 0.1 * #data:sample(1).context, true, "but not much")

-- map: once, eagerly; a bad return names the sample.
local upper = data:map(function(s) s.answer = s.answer:upper(); return s end)
t.equal(#upper, #data, "map keeps every sample")
t.equal(upper:sample(3).answer, data:sample(3).answer:upper(), "map applied")
local seen = 0
local ok, err = pcall(function()
  return data:map(function(s) seen = seen + 1; if seen == 3 then s.answer = 5 end return s end)
end)
t.equal(ok, false, "map returning a bad sample")
t.equal(tostring(err):find("map: sample 3: field \"answer\" must be a string, got a number") ~= nil, true, tostring(err))

-- from_table: samples and documents; errors name the item.
local tiny = ft.data.from_table {
  { question = "Total?", context = "Total: 5", answer = "5" },
  { context = "Due: May 1", qas = { { question = "Due?", answer = "May 1" }, { question = "Month?", answer = "May" } } },
}
t.equal(#tiny, 3, "from_table expands documents")
t.equal(tiny:sample(3).answer, "May", "from_table keeps order")
local bad_ok, bad_err = pcall(ft.data.from_table, { { question = "q", context = "c", answer = "a" }, { question = "q", context = "c" } })
t.equal(bad_ok, false, "from_table with a missing answer")
t.equal(tostring(bad_err):find("item 2: missing field \"answer\"") ~= nil, true, tostring(bad_err))

-- kfold: folds partition the data; no document on both sides.
local folds = data:kfold { k = 3, seed = 1 }
t.equal(#folds, 3, "three folds")
local held = 0
for i, fold in ipairs(folds) do
  held = held + #fold.eval
  t.equal(#fold.train + #fold.eval, #data, ("fold %d covers the data"):format(i))
  local contexts = {}
  for j = 1, #fold.eval do contexts[fold.eval:sample(j).context] = true end
  local leaked = 0
  for j = 1, #fold.train do if contexts[fold.train:sample(j).context] then leaked = leaked + 1 end end
  t.equal(leaked, 0, ("fold %d keeps documents whole"):format(i))
end
t.equal(held, #data, "each sample is held out once")
t.equal(pcall(function() return data:kfold { k = 1 } end), false, "k = 1 is refused")
t.done("augment")
