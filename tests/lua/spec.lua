-- A minimal assertion helper for the Lua spec files (they run under `ftlua run`).
local M = { checks = 0 }

function M.near(actual, expected, tolerance, what)
  M.checks = M.checks + 1
  if type(actual) ~= "number" or math.abs(actual - expected) > tolerance then
    error(("%s: expected %s, got %s"):format(what, tostring(expected), tostring(actual)), 2)
  end
end

function M.equal(actual, expected, what)
  M.checks = M.checks + 1
  if actual ~= expected then
    error(("%s: expected %s, got %s"):format(what, tostring(expected), tostring(actual)), 2)
  end
end

function M.done(name)
  if M.checks == 0 then error(name .. ": the spec checked nothing") end
  print(("%s: %d checks passed"):format(name, M.checks))
end

return M
