--- Tuning: K-fold cross-validation, the practice's staged search, grid and random search. Every
--- trial trains through `build(settings, trial) -> trainer` (an `ft.trainer` given `settings`),
--- in its own run directory (`run_name` = the trial's name, under the trainer's output directory:
--- `--output-dir`, the script's `output_dir`, or runs/<script>); the results go to summary.json
--- beside the trials and are printed as a table.
local ft = require "ftlua"
local M = {}

local function copy(t)
  local out = {}
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

local function merge(base, extra)
  local out = copy(base)
  for k, v in pairs(extra or {}) do out[k] = v end
  return out
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

--- Mean and sample standard deviation of a list of numbers.
function M.mean_std(values)
  local n, sum = #values, 0
  for _, v in ipairs(values) do sum = sum + v end
  local mean = sum / n
  local squares = 0
  for _, v in ipairs(values) do squares = squares + (v - mean) ^ 2 end
  return mean, n > 1 and math.sqrt(squares / (n - 1)) or 0
end

--- A readable table: `columns` names the fields of `rows` to show, in order.
function M.format_table(rows, columns)
  local function cell(v)
    if type(v) == "number" then
      if math.type(v) == "integer" then return tostring(v) end
      if v ~= 0 and (math.abs(v) < 1e-2 or math.abs(v) >= 1e5) then return ("%.2e"):format(v) end
      return ("%.4f"):format(v)
    end
    return v == nil and "-" or tostring(v)
  end
  local widths, lines = {}, {}
  for i, c in ipairs(columns) do
    widths[i] = #c
    for _, row in ipairs(rows) do widths[i] = math.max(widths[i], utf8.len(cell(row[c]))) end
  end
  local function line(values)
    local parts = {}
    for i, v in ipairs(values) do parts[i] = v .. string.rep(" ", widths[i] - utf8.len(v)) end
    return (table.concat(parts, "  "):gsub("%s+$", ""))
  end
  lines[1] = line(columns)
  local rule = 0
  for _, w in ipairs(widths) do rule = rule + w end
  lines[2] = string.rep("-", rule + 2 * (#columns - 1))
  for _, row in ipairs(rows) do
    local values = {}
    for i, c in ipairs(columns) do values[i] = cell(row[c]) end
    lines[#lines + 1] = line(values)
  end
  return table.concat(lines, "\n")
end

--- The directory holding a trial's run directory.
local function parent(dir) return (dir:gsub("/[^/]+/?$", "")) end

local function write_summary(output_dir, summary)
  local path = output_dir .. "/summary.json"
  local file = assert(io.open(path, "w"))
  file:write(ft.json.encode(summary), "\n")
  file:close()
  return path
end

--- The value of `metric` a finished run reports: its best, when the run tracked that metric as
--- best, else its last evaluation.
local function score(result, metric)
  if result.best and result.best.metric == metric then return result.best.value end
  return result.metrics[metric]
end

local function lower_is_better(metric, mode)
  if mode then return mode == "min" end
  return metric:find("loss") ~= nil
end

--- Runs one trial per entry of `trials` ({name, settings}); returns rows with the settings, the
--- score and every final metric.
--- Also returns the directory the trials' run directories are in.
local function run_trials(opts, trials, metric)
  local rows, root = {}, nil
  for i, trial in ipairs(trials) do
    local settings = merge(trial.settings, { run_name = trial.name, output_dir = opts.output_dir })
    ft.log.info(("trial %d/%d: %s"):format(i, #trials, trial.name))
    local result = opts.build(settings, trial):fit()
    local row = merge(trial.settings, result.metrics)
    row.trial, row.score, row.steps = trial.name, score(result, metric), result.global_step
    rows[#rows + 1] = row
    root = parent(result.output_dir)
  end
  return rows, root
end

--- K-fold cross-validation: `build(fold)` gets {index, train, eval, settings} and returns a
--- trainer made with `settings` (its run directory, fold-<i>); prints and returns mean ± std of
--- every final eval metric. Options: data, k (5), seed (42), build, output_dir.
function M.kfold(opts)
  assert(opts and opts.data and opts.build, "tune.kfold: needs data and build")
  local folds = opts.data:kfold { k = opts.k or 5, seed = opts.seed or 42 }
  local values, rows, root = {}, {}, nil
  for i, fold in ipairs(folds) do
    ft.log.info(("fold %d/%d: %d train, %d eval"):format(i, #folds, #fold.train, #fold.eval))
    local settings = { run_name = ("fold-%d"):format(i), output_dir = opts.output_dir }
    local result = opts.build({ index = i, train = fold.train, eval = fold.eval, settings = settings }):fit()
    root = parent(result.output_dir)
    local row = { fold = i, steps = result.global_step }
    for name, value in pairs(result.metrics) do
      values[name] = values[name] or {}
      table.insert(values[name], value)
      row[name] = value
    end
    rows[#rows + 1] = row
  end
  local metrics, summary_rows = {}, {}
  for _, name in ipairs(sorted_keys(values)) do
    local mean, std = M.mean_std(values[name])
    metrics[name] = { mean = mean, std = std, values = values[name] }
    summary_rows[#summary_rows + 1] = { metric = name, mean = mean, std = std, ["mean ± std"] = ("%.4f ± %.4f"):format(mean, std) }
  end
  local text = M.format_table(summary_rows, { "metric", "mean ± std" })
  print(("K-fold cross-validation, k = %d:\n%s"):format(#folds, text))
  local path = write_summary(root, { kind = "kfold", k = #folds, folds = rows, metrics = metrics, table = text })
  return { metrics = metrics, folds = rows, summary = path, table = text }
end

--- The practice's order: learning rate, then batch size / accumulation, then eval/save
--- frequency, then weight decay. Each turns a value of `space[name]` into settings.
M.stage_order = {
  { name = "learning_rate", settings = function(v) return { learning_rate = v } end },
  { name = "batch", settings = function(v) return { batch_size = v.batch_size or v[1], grad_accum = v.grad_accum or v[2] } end },
  { name = "frequency", settings = function(v) return { eval_every = v, save_every = v } end },
  { name = "weight_decay", settings = function(v) return { weight_decay = v } end },
}

--- Staged search: each stage of `stage_order` present in `space` tries its values on top of the
--- best settings so far and keeps the best by `metric` (default "eval_loss"; `mode` "min"/"max"),
--- or the settings so far when no trial of the stage beats them.
--- space = {learning_rate = {...}, batch = {{16, 2}, ...}, frequency = {...}, weight_decay = {...}}.
--- Options: base (settings every trial starts from), build(settings, trial), output_dir.
function M.staged(opts)
  assert(opts and opts.space and opts.build, "tune.staged: needs space and build")
  local metric = opts.metric or "eval_loss"
  local lower = lower_is_better(metric, opts.mode)
  local run_opts = { build = opts.build, output_dir = opts.output_dir }
  local best_settings, best_score = copy(opts.base), nil
  local rows, root = {}, nil
  for _, stage in ipairs(M.stage_order) do
    local values = opts.space[stage.name]
    if values then
      local trials = {}
      for i, value in ipairs(values) do
        trials[i] = { name = ("%s-%d"):format(stage.name, i), settings = merge(best_settings, stage.settings(value)) }
      end
      local stage_best
      local stage_rows
      stage_rows, root = run_trials(run_opts, trials, metric)
      for _, row in ipairs(stage_rows) do
        row.stage = stage.name
        rows[#rows + 1] = row
        if row.score ~= nil and (stage_best == nil or (lower and row.score < stage_best.score) or (not lower and row.score > stage_best.score)) then
          stage_best = row
        end
      end
      -- The settings so far stay unless a trial of this stage beats them.
      local beats = stage_best and (best_score == nil or (lower and stage_best.score < best_score) or (not lower and stage_best.score > best_score))
      if beats then
        for _, trial in ipairs(trials) do
          if trial.name == stage_best.trial then best_settings = trial.settings end
        end
        best_score = stage_best.score
        ft.log.info(("stage %s: best %s = %.4f (%s)"):format(stage.name, metric, stage_best.score, stage_best.trial))
      elseif stage_best then
        ft.log.info(("stage %s: no trial beat %s = %.4f; keeping the settings so far"):format(stage.name, metric, best_score))
      end
    end
  end
  local columns = { "stage", "trial", "learning_rate", "batch_size", "grad_accum", "eval_every", "weight_decay", "steps", "score" }
  local text = M.format_table(rows, columns)
  print(("Staged search by %s (%s is better):\n%s"):format(metric, lower and "lower" or "higher", text))
  local path = write_summary(root, { kind = "staged", metric = metric, trials = rows, best = best_settings, best_score = best_score, table = text })
  return { best = best_settings, score = best_score, trials = rows, summary = path, table = text }
end

local function search(opts, trials, kind)
  local metric = opts.metric or "eval_loss"
  local lower = lower_is_better(metric, opts.mode)
  local rows, root = run_trials({ build = opts.build, output_dir = opts.output_dir }, trials, metric)
  local best
  for _, row in ipairs(rows) do
    if row.score ~= nil and (best == nil or (lower and row.score < best.score) or (not lower and row.score > best.score)) then best = row end
  end
  local columns = { "trial" }
  for _, k in ipairs(sorted_keys(opts.space)) do columns[#columns + 1] = k end
  columns[#columns + 1], columns[#columns + 2] = "steps", "score"
  local text = M.format_table(rows, columns)
  print(("%s search by %s:\n%s"):format(kind, metric, text))
  local path = write_summary(root, { kind = kind, metric = metric, trials = rows, best = best, table = text })
  return { best = best, trials = rows, summary = path, table = text }
end

--- Every combination of `space` = {setting = {values...}}. Options: base, build, metric, mode, output_dir.
function M.grid(opts)
  assert(opts and opts.space and opts.build, "tune.grid: needs space and build")
  local combos = { copy(opts.base) }
  for _, key in ipairs(sorted_keys(opts.space)) do
    local next_combos = {}
    for _, combo in ipairs(combos) do
      for _, value in ipairs(opts.space[key]) do next_combos[#next_combos + 1] = merge(combo, { [key] = value }) end
    end
    combos = next_combos
  end
  local trials = {}
  for i, settings in ipairs(combos) do trials[i] = { name = ("grid-%d"):format(i), settings = settings } end
  return search(opts, trials, "grid")
end

--- `trials` draws (default 8) from `space`: a list picks one of its values, {min, max, log = true}
--- draws a number (log-uniform with log). Seeded by `seed` (42). Options as grid.
function M.random(opts)
  assert(opts and opts.space and opts.build, "tune.random: needs space and build")
  local rng = ft.data.rng(opts.seed or 42)
  local trials = {}
  for i = 1, opts.trials or 8 do
    local settings = copy(opts.base)
    for _, key in ipairs(sorted_keys(opts.space)) do
      local dim = opts.space[key]
      if dim.min then
        local u = rng:random()
        settings[key] = dim.log and math.exp(math.log(dim.min) + u * (math.log(dim.max) - math.log(dim.min)))
          or dim.min + u * (dim.max - dim.min)
      else
        settings[key] = dim[rng:random(#dim)]
      end
    end
    trials[i] = { name = ("random-%d"):format(i), settings = settings }
  end
  return search(opts, trials, "random")
end

return M
