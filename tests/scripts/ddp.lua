-- A data-parallel test run: a micro T5 without dropout (so that one process and several compute
-- the same numbers) for 6 steps, evaluating every 3. Every rank saves the weights it ends with to
-- $WEIGHTS/rank-N and reports each batch change; STOP_AT=k stops after step k. Used by
-- tests/distributed.rs.
local ft = require "ftlua"

local data = ft.data.qa("examples/data/invoices.jsonl", { max_source_len = 128, max_target_len = 32 })
local train, eval = data:split { eval_fraction = 0.01, seed = 5 }
local rank = ft.device.info().rank

local stop_at = tonumber(os.getenv("STOP_AT") or "")
local reporter = { name = "reporter", batch = "" }
function reporter:on_step_end(state)
  local batch = ("%dx%d"):format(state.batch_size, state.grad_accum)
  if batch ~= self.batch then
    print(("rank %d: step %d trained with batch %s"):format(rank, state.global_step, batch))
    self.batch = batch
  end
  if state.global_step == stop_at then return { stop = true, reason = "STOP_AT" } end
end

local run = ft.trainer {
  model = ft.model.t5 { preset = "micro", dropout_rate = 0 },
  train = train, eval = eval,
  learning_rate = 2e-3, batch_size = 4, grad_accum = 1, max_steps = 6, log_every = 1, eval_every = 3,
  weight_decay = 0.01, max_new_tokens = 4,
  callbacks = { reporter },
}
local result = run:fit()
result.model:save(("%s/rank-%d"):format(os.getenv("WEIGHTS"), rank))
print(("rank %d: finished at step %d"):format(rank, result.global_step))
