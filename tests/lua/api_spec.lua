package.path = "tests/lua/?.lua;" .. package.path
-- Spec for the native API's small functions: datasets, model descriptions, device, log.
local ft = require "ftlua"
local schedule = require "ftlua.schedule"
local t = require "spec"

local data = ft.data.qa("examples/data/invoices.jsonl", { max_source_len = 384, max_target_len = 48 })
t.equal(#data, 3600, "bundled samples")
t.equal(data:len(), 3600, "len()")
local first = data:sample(1)
t.equal(first.answer, "$92,853.48", "sample(1).answer")
t.equal(first.prompt:sub(1, 10), "question: ", "sample(1).prompt uses the template")
local ok, err = pcall(function() return data:sample(0) end)
t.equal(ok, false, "sample(0) is out of range")
t.equal(tostring(err):find("out of range 1..3600") ~= nil, true, "out-of-range message: " .. tostring(err))

local report = data:report()
t.equal(report.samples, 3600, "report().samples")
t.equal(report.answers_cut_from_context, 0, "no answer is cut at 384 bytes")
t.equal(report.source_tokens.max <= 384, true, "longest prompt fits")

local path = os.tmpname()
local train, eval = data:split { eval_fraction = 0.1, seed = 7 }
eval:write_jsonl(path)
local reloaded = ft.data.qa(path)
t.equal(#reloaded, #eval, "write_jsonl round-trips")
t.equal(reloaded:sample(1).question, eval:sample(1).question, "same first question")
os.remove(path)
t.equal(#train + #eval, 3600, "split keeps every sample")

local info = ft.model.t5 { preset = "tiny", num_heads = 2, d_kv = 64 }:info()
t.equal(info.config.num_heads, 2, "info().config reflects overrides")
t.equal(info.parameters, 1427840 - 2 * 32 * 2, "info().parameters without allocating (tiny: 1427840 with 4 heads)")
local bad_ok, bad_err = pcall(ft.model.t5, { preset = "tiny", d_modle = 3 })
t.equal(bad_ok, false, "unknown config field")
t.equal(tostring(bad_err):find("unknown config field `d_modle`") ~= nil, true, tostring(bad_err))

-- save / load / generate: a freshly initialized micro model round-trips through HF's layout.
local micro = ft.model.t5 { preset = "micro" }
local saved = os.tmpname()
os.remove(saved)
micro:save(saved)
local reloaded_model = ft.model.load(saved)
t.equal(reloaded_model:info().weights, saved, "load(dir) points at the saved weights")
local question = { question = "Total?", context = "Total: 42", max_new_tokens = 6 }
local first_answer = reloaded_model:generate(question)
t.equal(type(first_answer), "string", "generate returns text")
t.equal(reloaded_model:generate(question), first_answer, "generation is deterministic")
question.num_beams = 3
t.equal(type(reloaded_model:generate(question)), "string", "beam search generate")
os.execute(("rm -rf %q"):format(saved))

local device = ft.device.info()
t.equal(device.kind == "cpu" or device.kind == "cuda", true, "device.info().kind")
t.equal(device.cores >= 1, true, "device.info().cores")

ft.log.info("api_spec: info line")
ft.log.warn("api_spec: warning line")
ft.log.debug("api_spec: debug line")
t.near(schedule.constant { warmup_steps = 4 }(2, 100, 0), 0.5, 1e-12, "constant warmup")
t.done("api")
