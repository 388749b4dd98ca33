-- Peak memory while loading a checkpoint: MODE=save writes a t5-small-sized model (60M parameters,
-- ~240 MB) into DIR; MODE=load reads it back and prints the resident memory before, the peak
-- (VmHWM) after, and the weights' size, in bytes.
local ft = require "ftlua"
local dir = assert(os.getenv("DIR"), "DIR")

local function status(field)
  for line in io.lines("/proc/self/status") do
    local kib = line:match("^" .. field .. ":%s+(%d+) kB")
    if kib then return tonumber(kib) * 1024 end
  end
end

if os.getenv("MODE") == "save" then
  ft.model.t5 { preset = "small", d_model = 512, d_kv = 64, d_ff = 2048, num_layers = 6, num_decoder_layers = 6, num_heads = 8 }:save(dir)
  return
end
local model = ft.model.load(dir)
local before = status("VmRSS")
model:generate { question = "q", context = "c", max_new_tokens = 1 }
local file = io.open(dir .. "/model.safetensors", "rb")
local size = file:seek("end")
file:close()
print(("before=%d peak=%d weights=%d"):format(before, status("VmHWM"), size))
