-- wrk script: POST the report batch in env BODY_FILE with the bearer token in env TOKEN. The body
-- holds `"request": 0` once; each request puts a number of its own there (thread and counter), so
-- no two bodies are the same bytes and nothing downstream can serve a repeat from a cache.
local file = io.open(os.getenv("BODY_FILE"), "r")
local body = file:read("*a")
file:close()
local at = body:find('"request": 0', 1, true)
local prefix, suffix = body:sub(1, at + 10), body:sub(at + 12)
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")
local threads, counter = 0, 0

function setup(thread) -- runs in the main state; sets the global `id` in the thread's state
  threads = threads + 1
  thread:set("id", threads)
end

request = function()
  counter = counter + 1
  return wrk.format("POST", nil, nil, prefix .. ((id or 0) * 1000000000 + counter) .. suffix)
end
