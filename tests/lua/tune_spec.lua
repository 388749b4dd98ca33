package.path = "tests/lua/?.lua;" .. package.path
-- Spec for ftlua.tune (with stand-in trainers whose scores are a function of their settings, and
-- one real K-fold on a tiny dataset) and ftlua.hardware.
local ft = require "ftlua"
local tune = require "ftlua.tune"
local hardware = require "ftlua.hardware"
local t = require "spec"

local root = os.tmpname()
os.remove(root)
os.execute(("mkdir -p %q"):format(root))

-- mean ± std (sample standard deviation, as reported for K folds).
for i, c in ipairs { { { 1, 2, 3 }, 2, 1 }, { { 5 }, 5, 0 }, { { 0.2, 0.4 }, 0.3, math.sqrt(0.02) } } do
  local mean, std = tune.mean_std(c[1])
  t.near(mean, c[2], 1e-12, ("mean_std case %d mean"):format(i))
  t.near(std, c[3], 1e-12, ("mean_std case %d std"):format(i))
end
t.equal(tune.format_table({ { a = 1, b = 0.5 }, { a = 10, b = 1e-4 } }, { "a", "b" }),
  "a   b\n------------\n1   0.5000\n10  1.00e-04", "format_table")

-- A trainer stand-in: `score(settings)` is its eval loss; it records what it was built with.
local built = {}
local function fake(score)
  return function(settings)
    built[#built + 1] = settings
    return { fit = function()
      return { metrics = { eval_loss = score(settings), eval_exact_match = 1 - score(settings) }, global_step = 7,
               output_dir = root .. "/" .. settings.run_name }
    end }
  end
end
-- Best: learning rate 2e-3, then batch 32 x 1 (only with that rate), frequency 50, weight decay 0.05.
local function loss(s)
  local l = math.abs(math.log(s.learning_rate / 2e-3))
  if s.learning_rate == 2e-3 and s.batch_size == 32 then l = l - 0.1 end
  if s.eval_every == 50 then l = l - 0.01 end
  return l + (s.weight_decay == 0.05 and 0 or 0.001) + 1
end
local staged = tune.staged {
  base = { learning_rate = 1e-3, batch_size = 16, grad_accum = 2, eval_every = 100, weight_decay = 0.01 },
  space = { weight_decay = { 0.0, 0.05 }, learning_rate = { 5e-4, 2e-3, 5e-3 }, batch = { { 8, 4 }, { 32, 1 } }, frequency = { 50, 200 } },
  build = fake(loss),
}
local order = {}
for _, s in ipairs(built) do order[#order + 1] = s.run_name end
t.equal(table.concat(order, " "), "learning_rate-1 learning_rate-2 learning_rate-3 batch-1 batch-2 frequency-1 frequency-2 weight_decay-1 weight_decay-2",
  "stages run in the practice's order, whatever the order of space")
t.equal(built[4].learning_rate, 2e-3, "the batch stage starts from the best learning rate")
t.equal(built[6].batch_size .. "x" .. built[6].grad_accum, "32x1", "the frequency stage starts from the best batch")
t.equal(built[6].save_every, 50, "frequency sets eval_every and save_every together")
t.equal(staged.best.learning_rate .. " " .. staged.best.batch_size .. " " .. staged.best.eval_every .. " " .. staged.best.weight_decay,
  "0.002 32 50 0.05", "best settings")
t.near(staged.score, 1 - 0.1 - 0.01, 1e-12, "best score")
local summary = ft.json.decode(io.open(root .. "/summary.json"):read("a"))
t.equal(summary.kind .. " " .. #summary.trials, "staged 9", "summary.json lists every trial")
t.equal(staged.table:find("stage", 1, true) == 1, true, "the table has a header")

-- A stage whose trials are all worse keeps the settings so far.
built = {}
local kept = tune.staged {
  base = { learning_rate = 1e-3, weight_decay = 0.01 },
  space = { learning_rate = { 2e-3 }, weight_decay = { 0.2, 0.3 } },
  build = fake(function(s) return 1 + math.abs(s.learning_rate - 2e-3) + (s.weight_decay == 0.01 and 0 or s.weight_decay) end),
}
t.equal(kept.best.weight_decay, 0.01, "no weight decay trial beat the incumbent")
t.near(kept.score, 1, 1e-12, "the incumbent's score")

-- "max" metrics pick the highest.
built = {}
local by_match = tune.staged { base = { learning_rate = 1e-3 }, space = { learning_rate = { 5e-4, 2e-3 } }, metric = "eval_exact_match", build = fake(loss) }
t.equal(by_match.best.learning_rate, 2e-3, "exact match: higher is better")

-- grid: every combination; random: seeded draws inside the space.
built = {}
local grid = tune.grid { space = { learning_rate = { 1e-3, 2e-3 }, weight_decay = { 0, 0.05 } }, build = fake(loss) }
t.equal(#grid.trials, 4, "grid tries every combination")
t.equal(grid.best.learning_rate .. " " .. grid.best.weight_decay, "0.002 0.05", "grid best")
built = {}
local space = { learning_rate = { min = 1e-4, max = 1e-2, log = true }, batch_size = { 8, 16 } }
local random = tune.random { space = space, trials = 5, seed = 3, build = fake(loss) }
t.equal(#random.trials, 5, "random runs `trials` trials")
for i, s in ipairs(built) do
  t.equal(s.learning_rate >= 1e-4 and s.learning_rate <= 1e-2, true, ("random trial %d lr in range"):format(i))
  t.equal(s.batch_size == 8 or s.batch_size == 16, true, ("random trial %d batch from the list"):format(i))
end
local first = built[1].learning_rate
built = {}
tune.random { space = space, trials = 1, seed = 3, build = fake(loss) }
t.equal(built[1].learning_rate, first, "random search is seeded")

-- A real K-fold: six one-question invoices, k = 3, two steps each.
local items = {}
for i = 1, 6 do items[i] = { question = "Total?", context = ("Invoice %d total: %d.00"):format(i, 10 * i), answer = tostring(10 * i) } end
local kfold = tune.kfold {
  data = ft.data.from_table(items), k = 3, seed = 1,
  build = function(fold)
    t.equal(#fold.train + #fold.eval, 6, ("fold %d covers the data"):format(fold.index))
    return ft.trainer { model = ft.model.t5 { preset = "micro" }, train = fold.train, eval = fold.eval, max_steps = 2,
      batch_size = 2, log_every = 100, max_new_tokens = 2, output_dir = root .. "/kfold", run_name = fold.settings.run_name }
  end,
}
t.equal(#kfold.metrics.eval_loss.values, 3, "one eval loss per fold")
t.equal(kfold.metrics.eval_loss.std > 0, true, "folds differ")
t.equal(io.open(root .. "/kfold/fold-3/metrics.jsonl") ~= nil, true, "each fold has its run directory")
t.equal(ft.json.decode(io.open(root .. "/kfold/summary.json"):read("a")).kind, "kfold", "kfold summary.json")

-- ft.json round-trips.
t.equal(ft.json.decode(ft.json.encode { a = { 1, 2 }, b = "x" }).a[2], 2, "json round trip")

-- hardware.suggest, table-driven: device, parameters -> batch x accumulation, precision.
local GiB = 1024 ^ 3
local advice = {
  { { kind = "cpu", cores = 2, memory_free = 16 * GiB }, 1e6, "16x2 fp32 epochs 0.5" },
  { { kind = "cuda", memory_free = 6 * GiB }, 6e7, "4x8 bf16 epochs 1" },
  { { kind = "cuda", memory_free = 16 * GiB }, 6e7, "16x2 bf16 epochs 1" },
  { { kind = "cuda", memory_free = 80 * GiB }, 6e7, "32x1 bf16 epochs 1" },
  { { kind = "cuda", memory_free = 6 * GiB, bf16 = false }, 3e8, "1x32 fp16 epochs 1" }, -- 4.5 GiB of state: short
  { { kind = "cpu", cores = 2, memory_free = 2 * GiB }, 1e8, "4x8 fp32 epochs 0.5" },
}
for i, c in ipairs(advice) do
  local s = hardware.suggest { device = c[1], model = c[2] }
  t.equal(("%dx%d %s epochs %s"):format(s.batch_size, s.grad_accum, s.precision, s.epochs), c[3], ("hardware case %d"):format(i))
  t.equal(#s.reasons >= 1, true, ("hardware case %d explains itself"):format(i))
end
local model = ft.model.t5 { preset = "micro" }
t.equal(hardware.suggest { model = model }.batch_size >= 1, true, "suggest takes a model and the current device")
local info = ft.device.info()
t.equal(type(info.name) == "string" and info.memory_total > 0 and info.memory_free > 0, true, "device.info() memory")
t.equal(("%d/%d/%d"):format(info.rank, info.world_size, info.local_rank), "0/1/0", "device.info() of a process run alone")

os.execute(("rm -rf %q"):format(root))
t.done("tune")
