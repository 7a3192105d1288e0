-- wrk script: POST the JSON body in env BODY_FILE with the bearer token in env TOKEN, each request
-- with a context of its own ({"request": N}), so that no two bodies of a thread are the same bytes.
local file = io.open(os.getenv("BODY_FILE"), "r")
local template = file:read("*a"):gsub("}%s*$", "")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")
local counter = 0

request = function()
  counter = counter + 1
  return wrk.format("POST", nil, nil, template .. ', "context": {"request": ' .. counter .. '}}')
end
