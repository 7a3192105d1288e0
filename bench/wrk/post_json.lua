-- wrk script: POST the JSON body in env BODY_FILE with the bearer token in env TOKEN.
local file = io.open(os.getenv("BODY_FILE"), "r")
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")
