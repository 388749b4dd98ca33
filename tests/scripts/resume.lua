-- Trains a micro T5 with dropout for max_steps; STOP_AT=k stops it after step k, FAIL_AT=k raises
-- an error in a handler during step k, SLOW_STEPS=s adds s seconds of CPU time to every step (so
-- that a signal surely lands inside one). Used by the exact-resume tests in tests/cli.rs and
-- tests/faults.rs. The counter callback has state that must survive a resume. AUGMENT=1 adds OCR
-- noise, drawn per epoch from the seed.
local ft = require "ftlua"
local schedule = require "ftlua.schedule"
local augment = require "ftlua.augment"

local data = ft.data.qa("examples/data/invoices.jsonl", { max_source_len = 384, max_target_len = 48 })
local train, eval = data:split { eval_fraction = 0.01, seed = 5 }

local counter = { name = "counter", steps = 0 }
function counter:on_step_end() self.steps = self.steps + 1 end
function counter:state_dict() return { steps = self.steps } end
function counter:load_state_dict(state) self.steps = state.steps end

local stop_at = tonumber(os.getenv("STOP_AT") or "")
local stopper = {
  name = "stopper",
  on_step_end = function(_, state)
    if stop_at and state.global_step == stop_at then return { stop = true, reason = "interrupted for the test" } end
  end,
}

local fail_at = tonumber(os.getenv("FAIL_AT") or "")
local buggy = {
  name = "buggy",
  on_pre_optimizer_step = function(_, state)
    if fail_at and state.global_step + 1 == fail_at then error("a bug in a callback") end
  end,
}

local slow_steps = tonumber(os.getenv("SLOW_STEPS") or "")
local slow = {
  name = "slow",
  on_step_end = function()
    local start = os.clock()
    while slow_steps and os.clock() - start < slow_steps do end
  end,
}

local run = ft.trainer {
  model = ft.model.t5 { preset = "micro", dropout_rate = 0.1 },
  train = train, eval = eval,
  learning_rate = 2e-3, batch_size = 4, grad_accum = 2, max_steps = 8, log_every = 3,
  weight_decay = 0.01, max_new_tokens = 4,
  schedule = schedule.cosine { warmup_steps = 2 },
  callbacks = { counter, stopper, buggy, slow },
  augment = os.getenv("AUGMENT") == "1" and augment.ocr_noise() or nil,
}
local result = run:fit()
print(("steps=%d counter=%d batch=%dx%d"):format(result.global_step, counter.steps, result.state.batch_size, result.state.grad_accum))
