-- wrk script: durable writes. Each request flips the Grafana Admin flag of user USER_ID
-- (PUT /api/admin/users/:id/permissions), so every one is a real store write that is
-- flushed before the answer (the admin stays, so the last-admin rule never refuses).
local id = os.getenv("USER_ID")
local n = 0
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"

request = function()
  n = n + 1
  local body = (n % 2 == 0) and '{"isGrafanaAdmin":true}' or '{"isGrafanaAdmin":false}'
  return wrk.format("PUT", "/api/admin/users/" .. id .. "/permissions", nil, body)
end
