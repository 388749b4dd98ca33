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
-- Hand-checked points of each shape.
t.near(schedule.cosine_restarts { num_cycles = 2 }(50, 100, 0), 1.0, 1e-12, "second cycle restarts at 1")
t.near(schedule.polynomial { power = 2 }(50, 100, 0), 0.25, 1e-12, "(1 - 0.5)^2")
t.near(schedule.inverse_sqrt()(40, 100, 10), 0.5, 1e-12, "1 / sqrt(40 / 10)")
t.near(schedule.wsd { decay_steps = 10 }(95, 100, 0), 0.5, 1e-12, "half way down the cosine decay")
t.near(schedule.wsd { decay_steps = 10 }(50, 100, 0), 1.0, 1e-12, "stable phase")
t.equal(pcall(schedule.wsd, { decay_type = "step" }), false, "unknown decay type")
t.done("schedule")
