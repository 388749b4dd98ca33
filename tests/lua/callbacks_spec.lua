package.path = "tests/lua/?.lua;" .. package.path
-- Spec for ftlua.callbacks: each case feeds a sequence of evaluations and checks at which one
-- (if any) the callback decides, and what.
local cb = require "ftlua.callbacks"
local t = require "spec"

local function feed(callback, values, metric, lr)
  for i, v in ipairs(values) do
    local decision = callback:on_eval_end({ global_step = i * 10, epoch = i, lr = lr or 1.0 }, { [metric] = v })
    if decision then return i, decision end
  end
  return nil
end

local early = {
  -- options, metric values, eval index that stops (nil: never)
  { { patience = 2 }, { 1.0, 0.5, 0.6, 0.7 }, 4 },
  { { patience = 3 }, { 1.0, 0.5, 0.6, 0.7 }, nil },
  { { patience = 1, min_delta = 0.1 }, { 1.0, 0.95 }, 2 },
  { { patience = 1, min_delta = 0.1 }, { 1.0, 0.85 }, nil },
  { { metric = "exact_match", patience = 1 }, { 0.2, 0.3, 0.25 }, 3 },
  { { metric = "eval_exact_match", mode = "min", patience = 1 }, { 0.2, 0.3 }, 2 },
  { { baseline = 0.4, patience = 2 }, { 0.5, 0.45, 0.3 }, 2 },
  { { start_from = 25, patience = 1 }, { 1.0, 2.0, 3.0, 4.0 }, 4 },
  { { patience = 9 }, { 1.0, 0 / 0 }, 2 },
  { { patience = 9, check_finite = false }, { 1.0, 0 / 0 }, nil },
  { { patience = 9, stopping_threshold = 0.2 }, { 1.0, 0.5, 0.19 }, 3 },
  { { patience = 9, divergence_threshold = 5.0 }, { 1.0, 6.0 }, 2 },
}
for i, case in ipairs(early) do
  local opts, values, expected = table.unpack(case)
  local metric = opts.metric or "eval_loss"
  if not metric:find("^eval_") then metric = "eval_" .. metric end
  local stopped_at, decision = feed(cb.early_stopping(opts), values, metric)
  t.equal(stopped_at, expected, ("early_stopping case %d"):format(i))
  if decision then t.equal(decision.stop, true, ("early_stopping case %d decides stop"):format(i)) end
end

-- State survives a save/restore in the middle of a sequence.
local a = cb.early_stopping { patience = 2 }
feed(a, { 1.0, 0.5, 0.6 }, "eval_loss")
local b = cb.early_stopping { patience = 2 }
b:load_state_dict(a:state_dict())
t.equal(feed(b, { 0.7 }, "eval_loss"), 1, "restored early_stopping stops at the next bad evaluation")

-- reduce_lr_on_plateau: the evaluations at which PyTorch's ReduceLROnPlateau lowers the lr, and
-- the lr it sets (golden values from tests/lua/golden/make_golden.py).
for n, case in ipairs(require "golden.plateau") do
  local policy = cb.reduce_lr_on_plateau(case.opts)
  local lr, changes = case.lr, {}
  for i, loss in ipairs(case.losses) do
    local decision = policy:on_eval_end({ global_step = i, epoch = i, lr = lr }, { eval_loss = loss })
    if decision then
      lr = decision.lr
      changes[#changes + 1] = { i, lr }
    end
  end
  t.equal(#changes, #case.changes, ("plateau case %d: number of reductions"):format(n))
  for k, change in ipairs(case.changes) do
    t.equal(changes[k][1], change[1], ("plateau case %d: reduction %d at evaluation"):format(n, k))
    t.near(changes[k][2], change[2], 1e-15, ("plateau case %d: reduction %d lr"):format(n, k))
  end
end

-- console prints one sorted line per evaluation.
local lines = {}
local printer = cb.console { print_fn = function(s) lines[#lines + 1] = s end }
printer:on_eval_end({ global_step = 7, epoch = 0.5 }, { eval_loss = 0.25, eval_exact_match = 0.5 })
t.equal(lines[1], "[eval] step 7 epoch 0.50 eval_exact_match=0.5000 eval_loss=0.2500", "console line")

-- keep_top_k: (eval value before each save, or nil for none) -> what each save deletes.
local top_k_cases = {
  -- options, scores at saves 1..n (steps 10, 20, ...), deletions after each save
  { { k = 2 }, { 0.9, 0.5, 0.7, 0.4 }, { {}, {}, { 10 }, { 30 } } },
  { { k = 2, metric = "exact_match" }, { 0.1, 0.5, 0.3, 0.6 }, { {}, {}, { 10 }, { 30 } } },
  { { k = 1 }, { false, 0.5, 0.6, 0.7 }, { {}, { 10 }, {}, { 30 } } }, -- unscored last; the newest waits
  { { k = 2 }, { 0.5, 0.5, 0.5 }, { {}, {}, { 10 } } },              -- ties: the newer stays
}
for n, case in ipairs(top_k_cases) do
  local opts, scores, expected = table.unpack(case)
  local keeper = cb.keep_top_k(opts)
  local metric = "eval_" .. (opts.metric or "loss")
  for i, score in ipairs(scores) do
    if score then keeper:on_eval_end({}, { [metric] = score }) end
    local decision = keeper:on_save({ global_step = 10 * i })
    local deleted = decision and decision.delete_checkpoints or {}
    t.equal(table.concat(deleted, ","), table.concat(expected[i], ","), ("keep_top_k case %d, save %d"):format(n, i))
  end
end
local keeper = cb.keep_top_k { k = 1 }
keeper:on_eval_end({}, { eval_loss = 0.3 })
keeper:on_save({ global_step = 5 })
local restored = cb.keep_top_k { k = 1 }
restored:load_state_dict(keeper:state_dict())
restored:on_eval_end({}, { eval_loss = 0.2 })
t.equal(restored:on_save({ global_step = 6 }).delete_checkpoints[1], 5, "keep_top_k state survives resume")
t.equal(pcall(cb.keep_top_k, { k = 0 }), false, "k = 0 is refused")
t.done("callbacks")
