-- wrk script: every request a lookup of its own, as SDK traffic looks: a random patch's error
-- code (E00000 up to env PATCHES - 1) followed by text no other request carries (a request id),
-- so no body, message or answer cache keyed on them ever repeats. Bearer token in env TOKEN.
local patches = tonumber(os.getenv("PATCHES") or "1")
local threads = 0
local counter = 0

function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end

function init(args)
  math.randomseed(id * 7919 + os.time())
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")
end

request = function()
  counter = counter + 1
  local request_id = string.format("%d-%d", id, counter)
  local body = string.format(
    '{"sdk": "node", "error": "E%05d connection refused (request %s)", "status": 503, '
      .. '"context": {"operation": "charge", "method": "POST", "path": "/v1/payments", "request_id": "%s"}}',
    math.random(0, patches - 1), request_id, request_id)
  return wrk.format("POST", nil, nil, body)
end
