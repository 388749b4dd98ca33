package.path = "tests/lua/?.lua;" .. package.path
-- Spec for ftlua.oom, table-driven: what each policy answers to an out-of-memory event.
local oom = require "ftlua.oom"
local t = require "spec"

local halving = {
  -- options, batch, accumulation, expected batch, expected accumulation (nil, nil: stop)
  { {}, 32, 1, 16, 2 },
  { {}, 5, 2, 3, 4 },                                  -- effective batch 10 -> 12, never smaller
  { { keep_effective_batch = false }, 32, 1, 16, 1 },
  { { min_batch = 8 }, 12, 1, 8, 2 },
  { { min_batch = 8 }, 8, 2, nil, nil },
  { {}, 1, 4, nil, nil },
}
for i, c in ipairs(halving) do
  local opts, batch, accum, want_batch, want_accum = table.unpack(c)
  local d = oom.halve_batch(opts):on_oom({}, { phase = "train", batch_size = batch, grad_accum = accum })
  if want_batch then
    t.equal(d.batch_size, want_batch, ("halve_batch case %d batch"):format(i))
    t.equal(d.grad_accum, want_accum, ("halve_batch case %d accumulation"):format(i))
  else
    t.equal(d.stop, true, ("halve_batch case %d stops at the floor"):format(i))
  end
end
t.equal(oom.halve_batch():on_oom({}, { phase = "eval", batch_size = 8, grad_accum = 1 }), nil, "eval OOMs are Rust's")
local shrink = oom.halve_batch { shrink_length = true, min_length = 100 }
local info = { phase = "train", batch_size = 1, grad_accum = 8, max_source_len = 330 }
t.equal(shrink:on_oom({}, info).max_source_len, 247, "at batch 1, prompts go to 3/4 of the longest")
info.max_source_len = 120
t.equal(shrink:on_oom({}, info).max_source_len, 100, "never below min_length")
info.max_source_len = 100
t.equal(shrink:on_oom({}, info).stop, true, "at min_length it stops")

-- grow_back: after N clean steps, double the batch toward where the run started.
local grow = oom.grow_back { after = 3 }
grow:on_train_begin({ batch_size = 16 })
local answers = {}
local state = { batch_size = 4, grad_accum = 4 }
for step = 1, 8 do
  if step == 2 then grow:on_oom() end
  local d = grow:on_step_end(state)
  if d then
    answers[#answers + 1] = ("%d:%dx%d"):format(step, d.batch_size, d.grad_accum)
    state = { batch_size = d.batch_size, grad_accum = d.grad_accum }
  end
end
t.equal(table.concat(answers, " "), "5:8x2 8:16x1", "grow_back doubles after 3 clean steps, reset by an oom")
local restored = oom.grow_back { after = 3 }
restored:load_state_dict(grow:state_dict())
t.equal(restored:on_step_end({ batch_size = 16, grad_accum = 1 }), nil, "no growth past the starting batch")
t.equal(oom.find_batch_size { max_batch = 64 }:on_train_begin({}).find_batch_size, 64, "find_batch_size asks Rust to search")
t.equal(oom.find_batch_size():on_train_begin({}).find_batch_size, 4096, "find_batch_size default bound")
t.done("oom")
