--- OCR-style text noise, as composable transforms. A transform is `function(sample, rng) -> sample`
--- where `rng:random()` draws a float in [0, 1) (`ft.data.rng(seed)`, or the one the trainer
--- passes). Give one to the trainer as `augment = ...`: it is applied to every training sample at
--- the start of each epoch with a stream seeded from (seed, epoch, sample), so the noise is drawn
--- anew each epoch and a resumed run draws what an uninterrupted one would. Eval data is never
--- augmented. Each transform changes `fields` (default: {"context"}), never the answer unless asked.
local M = {}

--- Characters OCR engines confuse, both ways.
M.confusables = {
  ["0"] = "O", O = "0", ["1"] = "l", l = "1", I = "1", ["5"] = "S", S = "5",
  ["8"] = "B", B = "8", ["2"] = "Z", Z = "2", ["6"] = "G", G = "6", [","] = ".", ["."] = ",",
}

--- A transform that applies `per_char(char, rng, p) -> string` to each UTF-8 character of the
--- sample's `fields`, with the probability `opts.p` (default `default_p`) checked once.
local function per_character(opts, default_p, who, per_char)
  opts = opts or {}
  local p = opts.p or default_p
  assert(type(p) == "number" and p >= 0 and p <= 1, who .. ": p must be a probability in [0, 1]")
  local fields = opts.fields or { "context" }
  return function(sample, rng)
    local out = {}
    for k, v in pairs(sample) do out[k] = v end
    for _, field in ipairs(fields) do
      local pieces = {}
      for _, code in utf8.codes(sample[field]) do pieces[#pieces + 1] = per_char(utf8.char(code), rng, p) end
      out[field] = table.concat(pieces)
    end
    return out
  end
end

--- Swaps confusable characters (0/O, 1/l, 5/S, ...) with probability p (default 0.03).
---@param opts? {p?: number, fields?: string[]}
function M.confuse(opts)
  return per_character(opts, 0.03, "augment.confuse", function(c, rng, p)
    local swap = M.confusables[c]
    if swap and rng:random() < p then return swap end
    return c
  end)
end

--- Drops non-space characters with probability p (default 0.01).
---@param opts? {p?: number, fields?: string[]}
function M.drop(opts)
  return per_character(opts, 0.01, "augment.drop", function(c, rng, p)
    if c ~= " " and rng:random() < p then return "" end
    return c
  end)
end

--- Doubles non-space characters with probability p (default 0.01).
---@param opts? {p?: number, fields?: string[]}
function M.double(opts)
  return per_character(opts, 0.01, "augment.double", function(c, rng, p)
    if c ~= " " and rng:random() < p then return c .. c end
    return c
  end)
end

--- Whitespace noise: each space is lost or doubled with probability p (default 0.02), half each.
---@param opts? {p?: number, fields?: string[]}
function M.whitespace(opts)
  return per_character(opts, 0.02, "augment.whitespace", function(c, rng, p)
    if c ~= " " then return c end
    local u = rng:random()
    if u < p / 2 then return "" end
    if u < p then return "  " end
    return c
  end)
end

--- Applies transforms in order.
---@param ... fun(sample: table, rng: any): table
function M.compose(...)
  local transforms = { ... }
  return function(sample, rng)
    for _, transform in ipairs(transforms) do sample = transform(sample, rng) end
    return sample
  end
end

--- All of the above: confuse, drop, double and whitespace, with their probabilities given as
--- `confuse`, `drop`, `double`, `whitespace` (defaults 0.03, 0.01, 0.01, 0.02).
---@param opts? {confuse?: number, drop?: number, double?: number, whitespace?: number, fields?: string[]}
function M.ocr_noise(opts)
  opts = opts or {}
  local function part(p) return { p = p, fields = opts.fields } end
  return M.compose(
    M.confuse(part(opts.confuse or 0.03)),
    M.drop(part(opts.drop or 0.01)),
    M.double(part(opts.double or 0.01)),
    M.whitespace(part(opts.whitespace or 0.02))
  )
end

return M
