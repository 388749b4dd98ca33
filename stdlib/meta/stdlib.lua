---@meta
-- LuaLS type stubs for the standard library (require "ftlua.<module>").

---@alias ftlua.Schedule fun(step: integer, max_steps: integer, warmup_steps: integer): number

---@class ftlua.schedule
local schedule = {}
--- Linear warmup from 0, then constant.
---@param opts? {warmup_steps?: integer}
---@return ftlua.Schedule
function schedule.constant(opts) end
--- Linear warmup, then linear decay to 0 at max_steps.
---@param opts? {warmup_steps?: integer}
---@return ftlua.Schedule
function schedule.linear(opts) end
--- Linear warmup, then cosine decay to min_ratio (num_cycles half-waves, default 0.5).
---@param opts? {warmup_steps?: integer, num_cycles?: number, min_ratio?: number}
---@return ftlua.Schedule
function schedule.cosine(opts) end
--- Same as cosine.
---@param opts? {warmup_steps?: integer, num_cycles?: number, min_ratio?: number}
---@return ftlua.Schedule
function schedule.warmup_cosine(opts) end

---@class ftlua.callbacks
local callbacks = {}
--- Stops when a metric stops improving.
---@param opts? {metric?: string, patience?: integer, min_delta?: number, mode?: "min"|"max", baseline?: number, start_from?: integer, check_finite?: boolean, stopping_threshold?: number, divergence_threshold?: number, name?: string}
---@return table callback
function callbacks.early_stopping(opts) end
--- Lowers the learning rate when a metric plateaus (PyTorch ReduceLROnPlateau).
---@param opts? {metric?: string, factor?: number, patience?: integer, cooldown?: integer, min_lr?: number, threshold?: number, mode?: "min"|"max", name?: string}
---@return table callback
function callbacks.reduce_lr_on_plateau(opts) end
--- Prints each evaluation's metrics on one line.
---@param opts? {print_fn?: fun(line: string), name?: string}
---@return table callback
function callbacks.console(opts) end
