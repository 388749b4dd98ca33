--- Hardware advice: batch size, accumulation, precision and epochs for a model on a device, by
--- the rules of fine-tuning practice. `suggest` explains each choice in `reasons`.
local M = {}

local GiB = 1024 ^ 3

--- Bytes a training step holds per parameter: fp32 weights, gradients and AdamW's two moments.
M.bytes_per_parameter = 16

--- Options: model (an ft.model handle or its `info()` table, or a parameter count), device
--- (`ft.device.info()`, the default), effective_batch (32). Returns {batch_size, grad_accum,
--- precision, epochs, reasons}; epochs is a multiplier hint (1 = as planned, 0.5 = half).
function M.suggest(opts)
  opts = opts or {}
  local device = opts.device or require("ftlua").device.info()
  local model = opts.model
  local parameters = type(model) == "number" and model
    or (type(model) == "table" and model.parameters)
    or (model ~= nil and model:info().parameters)
  assert(parameters, "hardware.suggest: model must be a model, its info() or a parameter count")
  local effective = opts.effective_batch or 32
  local memory = device.memory_free or device.memory_total
  local training_bytes = parameters * M.bytes_per_parameter
  local reasons = {}
  local out = { precision = "fp32", epochs = 1, reasons = reasons }

  local function batch(b)
    out.batch_size = math.min(b, effective)
    out.grad_accum = math.max(1, effective // out.batch_size)
  end

  if device.kind == "cuda" then
    local gib = (memory or 0) / GiB
    if gib < 8 then
      batch(4)
      reasons[#reasons + 1] = ("GPU with %.1f GiB (under 8): small batches with gradient accumulation"):format(gib)
    elseif gib < 24 then
      batch(16)
      reasons[#reasons + 1] = ("GPU with %.1f GiB: batch 16 with accumulation up to %d"):format(gib, effective)
    else
      batch(32)
      reasons[#reasons + 1] = ("GPU with %.1f GiB: room for batch 32"):format(gib)
    end
    out.precision = device.bf16 == false and "fp16" or "bf16"
    reasons[#reasons + 1] = "mixed precision on CUDA: about half the activation memory, faster matmuls"
  else
    batch(16)
    out.epochs = 0.5
    reasons[#reasons + 1] = ("CPU with %d cores: batch 16; plan fewer epochs (a CPU step is slow)"):format(device.cores or 1)
  end

  if memory and training_bytes > 0.5 * memory then
    out.batch_size = math.max(1, out.batch_size // 4)
    out.grad_accum = math.max(1, effective // out.batch_size)
    if device.kind == "cuda" then out.precision = out.precision == "fp32" and "bf16" or out.precision end
    reasons[#reasons + 1] = ("memory is short: weights, gradients and optimizer state take %.1f GiB of %.1f GiB free; smaller batches%s")
      :format(training_bytes / GiB, memory / GiB, device.kind == "cuda" and " and half precision" or "")
  end
  return out
end

return M
