package.path = "tests/lua/?.lua;" .. package.path
-- Spec for ftlua.diagnose and ftlua.regularize, table-driven over small histories.
local diagnose = require "ftlua.diagnose"
local regularize = require "ftlua.regularize"
local t = require "spec"

local function history(train, eval)
  local h = {}
  for i, v in ipairs(train) do h[#h + 1] = { event = "log", step = i * 10, loss = v } end
  for i, v in ipairs(eval or {}) do h[#h + 1] = { event = "eval", step = i * 20, eval_loss = v } end
  return h
end

local cases = {
  { "converged, eval tracks train", history({ 3.0, 1.0, 0.52, 0.5, 0.5, 0.5 }, { 0.6, 0.55, 0.56 }), "fine" },
  { "eval rises while train falls", history({ 3.0, 1.0, 0.5, 0.3, 0.2, 0.1 }, { 0.8, 0.6, 0.9 }), "overfitting" },
  { "large train/eval gap", history({ 3.0, 1.0, 0.5, 0.3, 0.3, 0.3 }, { 1.2, 1.1, 1.1 }), "overfitting" },
  { "still falling fast at the end", history({ 3.0, 2.5, 2.0, 1.5, 1.2, 0.9 }, { 1.0, 0.95 }), "underfitting" },
  { "barely moved", history({ 3.0, 2.9, 2.9, 2.85, 2.85, 2.85 }), "underfitting" },
  { "loss blew up", history({ 3.0, 1.0, 0.5, 2.0 }), "diverging" },
  { "nan loss", history({ 3.0, 0 / 0 }), "diverging" },
  { "no logs", {}, "fine" },
}
for _, case in ipairs(cases) do
  local name, h, expected = table.unpack(case)
  local v = diagnose.verdict(h)
  t.equal(v.verdict, expected, name)
  t.equal(#v.evidence > 0, true, name .. " has evidence")
  t.equal(#v.advice > 0, true, name .. " has advice")
end
local text = diagnose.format(diagnose.verdict(history({ 3.0, 1.0, 0.5, 0.3, 0.2, 0.1 }, { 0.8, 0.6, 0.9 })))
t.equal(text:match("^diagnosis: overfitting\n  evidence: eval loss rose") ~= nil, true, "format: " .. text)
t.equal(text:find("raise weight decay %(e.g. 0.01 %-> 0.05%)") ~= nil, true, "format lists the advice")

-- regularize.weight_decay: gap above 0.3 raises to high, under 0.15 lowers to low, else nothing.
local policy = regularize.weight_decay { low = 0.01, high = 0.05, gap = 0.3 }
local wd_cases = {
  { 0.01, 0.5, 1.0, 0.05 },   -- current wd, train loss, eval loss, expected decision (nil: none)
  { 0.05, 0.5, 1.0, nil },
  { 0.05, 0.5, 0.6, 0.01 },
  { 0.01, 0.5, 0.6, nil },
  { 0.01, 0.5, 0.75, nil },
}
for i, c in ipairs(wd_cases) do
  local d = policy:on_eval_end({ weight_decay = c[1], train_loss = c[2] }, { eval_loss = c[3] })
  t.equal(d and d.weight_decay, c[4], ("weight_decay case %d"):format(i))
end
local custom = regularize.weight_decay { rule = function() return 0.2 end }
t.equal(custom:on_eval_end({ weight_decay = 0.0 }, {}).weight_decay, 0.2, "custom rule decides")
t.done("diagnose")
