package.path = "tests/lua/?.lua;" .. package.path
-- Spec for ftlua.schedule, table-driven. Values from HF transformers'
-- get_{constant,linear,cosine}_schedule_with_warmup formulas at the listed steps.
local schedule = require "ftlua.schedule"
local t = require "spec"

local cases = {
  -- name, schedule, max_steps, warmup, { {step, expected factor}, ... }
  { "constant", schedule.constant(), 100, 10, { { 0, 0.0 }, { 5, 0.5 }, { 10, 1.0 }, { 99, 1.0 } } },
  { "linear", schedule.linear(), 100, 10, { { 0, 0.0 }, { 5, 0.5 }, { 10, 1.0 }, { 55, 0.5 }, { 100, 0.0 } } },
  { "cosine", schedule.cosine(), 110, 10, { { 5, 0.5 }, { 10, 1.0 }, { 60, 0.5 }, { 110, 0.0 } } },
  { "cosine min_ratio", schedule.cosine { min_ratio = 0.1 }, 110, 10, { { 60, 0.55 }, { 110, 0.1 } } },
  { "own warmup wins", schedule.linear { warmup_steps = 20 }, 100, 10, { { 10, 0.5 } } },
  { "warmup_cosine alias", schedule.warmup_cosine(), 110, 10, { { 60, 0.5 } } },
}

for _, case in ipairs(cases) do
  local name, f, max_steps, warmup, points = table.unpack(case)
  for _, point in ipairs(points) do
    t.near(f(point[1], max_steps, warmup), point[2], 1e-12, ("%s at step %d"):format(name, point[1]))
  end
end
t.done("schedule")
