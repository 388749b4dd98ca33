package.path = "tests/lua/?.lua;" .. package.path
-- Spec for ftlua.schedule: every multiplier, at every step, equals HF transformers' scheduler
-- (golden values from tests/lua/golden/make_golden.py).
local schedule = require "ftlua.schedule"
local golden = require "golden.schedules"
local t = require "spec"

for _, case in ipairs(golden) do
  local f = schedule[case.name](case.opts)
  for step, expected in ipairs(case.values) do
    t.near(f(step - 1, case.max_steps, case.warmup), expected, 1e-12,
      ("%s (max_steps %d, warmup %d) at step %d"):format(case.name, case.max_steps, case.warmup, step - 1))
  end
end

-- Options given to the schedule win over the trainer's warmup; warmup_cosine is cosine.
t.near(schedule.linear { warmup_steps = 20 }(10, 100, 10), 0.5, 1e-12, "own warmup wins")
t.near(schedule.warmup_cosine()(60, 110, 10), 0.5, 1e-12, "warmup_cosine alias")
t.done("schedule")
