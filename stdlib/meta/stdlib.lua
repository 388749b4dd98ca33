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
--- Linear warmup, then num_cycles (default 1) cosine decays to 0, each restarting at 1 (HF's hard restarts).
---@param opts? {warmup_steps?: integer, num_cycles?: integer}
---@return ftlua.Schedule
function schedule.cosine_restarts(opts) end
--- Linear warmup, then (1 - progress)^power (default 1) from 1 down to end_ratio (default 0).
---@param opts? {warmup_steps?: integer, power?: number, end_ratio?: number}
---@return ftlua.Schedule
function schedule.polynomial(opts) end
--- Linear warmup, then 1 / sqrt((step + timescale - warmup) / timescale); timescale defaults to the warmup.
---@param opts? {warmup_steps?: integer, timescale?: integer}
---@return ftlua.Schedule
function schedule.inverse_sqrt(opts) end
--- Warmup-stable-decay: warm up, hold at 1, decay over the last decay_steps (or decay_fraction, default 0.1).
---@param opts? {warmup_steps?: integer, decay_steps?: integer, decay_fraction?: number, stable_steps?: integer, warmup_type?: "linear"|"cosine"|"1-sqrt", decay_type?: "linear"|"cosine"|"1-sqrt", min_ratio?: number, num_cycles?: number}
---@return ftlua.Schedule
function schedule.wsd(opts) end

---@class ftlua.callbacks
local callbacks = {}
--- Keeps the k best checkpoints by a metric (default eval_loss) and deletes the others; the best
--- and the newest are always kept by the trainer.
---@param opts? {k?: integer, metric?: string, mode?: "min"|"max", name?: string}
---@return table callback
function callbacks.keep_top_k(opts) end
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

---@class ftlua.Verdict
---@field verdict "fine"|"overfitting"|"underfitting"|"diverging"
---@field evidence string[]
---@field advice string[]

---@class ftlua.diagnose
---@field advice table<string, string[]> The practice's advice for each verdict.
local diagnose = {}
--- A verdict on a run's history (records of metrics.jsonl with event = "log" / "eval").
---@param history table[]
---@param opts? {overfit_rise?: number, gap?: number, still_improving?: number, diverge_factor?: number}
---@return ftlua.Verdict
function diagnose.verdict(history, opts) end
--- The verdict as printed at the end of a run.
---@param verdict ftlua.Verdict
---@return string
function diagnose.format(verdict) end

---@class ftlua.regularize
local regularize = {}
--- Raises weight decay to `high` when eval loss exceeds train loss by more than `gap`, lowers it to
--- `low` when the gap closes; `rule(state, metrics, current)` may replace the decision.
---@param opts? {low?: number, high?: number, gap?: number, rule?: fun(state: ftlua.State, metrics: table<string, number>, current: number): number?, name?: string}
---@return table callback
function regularize.weight_decay(opts) end

---@class ftlua.OomInfo What an `oom` handler receives as its second argument.
---@field phase "train"|"eval"
---@field batch_size integer
---@field grad_accum integer
---@field max_source_len integer
---@field resident_bytes? integer
---@field message string

---@class ftlua.oom
local oom = {}
--- Halves the batch on out of memory, keeping batch × accumulation (unless told not to); at the
--- floor, cuts prompts to 3/4 if `shrink_length` allows it, else stops.
---@param opts? {min_batch?: integer, keep_effective_batch?: boolean, shrink_length?: boolean, min_length?: integer, name?: string}
---@return table callback
function oom.halve_batch(opts) end
--- Doubles the batch back (halving accumulation) after `after` clean steps, up to where it started.
---@param opts? {after?: integer, max_batch?: integer, name?: string}
---@return table callback
function oom.grow_back(opts) end
--- Finds the largest micro-batch that fits before training (power-of-two, then binary search on the
--- longest samples), keeping batch × accumulation.
---@param opts? {max_batch?: integer, name?: string}
---@return table callback
function oom.find_batch_size(opts) end

---@alias ftlua.Transform fun(sample: {question: string, context: string, answer: string}, rng: ftlua.Rng): {question: string, context: string, answer: string}

---@class ftlua.augment
---@field confusables table<string, string> Characters OCR engines confuse, both ways.
local augment = {}
--- Swaps confusable characters (0/O, 1/l, 5/S, ...) with probability p (default 0.03).
---@param opts? {p?: number, fields?: string[]}
---@return ftlua.Transform
function augment.confuse(opts) end
--- Drops non-space characters with probability p (default 0.01).
---@param opts? {p?: number, fields?: string[]}
---@return ftlua.Transform
function augment.drop(opts) end
--- Doubles non-space characters with probability p (default 0.01).
---@param opts? {p?: number, fields?: string[]}
---@return ftlua.Transform
function augment.double(opts) end
--- Each space is lost or doubled with probability p (default 0.02), half each.
---@param opts? {p?: number, fields?: string[]}
---@return ftlua.Transform
function augment.whitespace(opts) end
--- Applies transforms in order.
---@param ... ftlua.Transform
---@return ftlua.Transform
function augment.compose(...) end
--- confuse, drop, double and whitespace together (defaults 0.03, 0.01, 0.01, 0.02); fields default {"context"}.
---@param opts? {confuse?: number, drop?: number, double?: number, whitespace?: number, fields?: string[]}
---@return ftlua.Transform
function augment.ocr_noise(opts) end

---@class ftlua.TuneResult
---@field trials table[] One row per trial: its settings, final metrics, `score` and `steps`.
---@field best table The best trial's settings (staged) or row (grid, random).
---@field summary string Path of summary.json.
---@field table string The printed table.

---@class ftlua.tune
---@field stage_order {name: string, settings: fun(value: any): table}[] learning_rate, batch, frequency, weight_decay.
local tune = {}
--- Mean and sample standard deviation.
---@param values number[]
---@return number mean
---@return number std
function tune.mean_std(values) end
--- A readable table of `rows`, showing `columns` in order.
---@param rows table[]
---@param columns string[]
---@return string
function tune.format_table(rows, columns) end
--- K trainings on data:kfold{k, seed}; `build(fold)` gets {index, train, eval, settings} and returns a trainer made with fold.settings. Prints mean ± std of every eval metric.
---@param opts {data: ftlua.Dataset, k?: integer, seed?: integer, build: fun(fold: table): ftlua.Trainer, output_dir?: string}
---@return {metrics: table<string, {mean: number, std: number, values: number[]}>, folds: table[], summary: string, table: string}
function tune.kfold(opts) end
--- Staged search: learning rate, then batch/accumulation, then eval/save frequency, then weight decay, each stage keeping the best by metric.
---@param opts {space: {learning_rate?: number[], batch?: integer[][], frequency?: integer[], weight_decay?: number[]}, base?: table, build: fun(settings: table, trial: table): ftlua.Trainer, metric?: string, mode?: "min"|"max", output_dir?: string}
---@return ftlua.TuneResult
function tune.staged(opts) end
--- Every combination of space = {setting = {values...}}.
---@param opts {space: table<string, any[]>, base?: table, build: fun(settings: table, trial: table): ftlua.Trainer, metric?: string, mode?: "min"|"max", output_dir?: string}
---@return ftlua.TuneResult
function tune.grid(opts) end
--- `trials` seeded draws from space: a list picks a value, {min, max, log} draws a number.
---@param opts {space: table<string, any>, trials?: integer, seed?: integer, base?: table, build: fun(settings: table, trial: table): ftlua.Trainer, metric?: string, mode?: "min"|"max", output_dir?: string}
---@return ftlua.TuneResult
function tune.random(opts) end

---@class ftlua.hardware
---@field bytes_per_parameter integer Training bytes per parameter (fp32 weights, gradients, AdamW moments): 16.
local hardware = {}
--- Batch size, accumulation, precision and an epochs multiplier for a model on a device, with reasons.
---@param opts {model: ftlua.Model|table|integer, device?: table, effective_batch?: integer}
---@return {batch_size: integer, grad_accum: integer, precision: "fp32"|"bf16"|"fp16", epochs: number, reasons: string[]}
function hardware.suggest(opts) end
