-- wrk script: durable writes spread over many users, as pgbench -N spreads its updates over
-- 100,000 accounts. Request i sets the Grafana Admin flag of user FIRST_ID + (i mod COUNT)
-- (PUT /api/admin/users/:id/permissions): granted on even passes over the COUNT users,
-- revoked on odd ones, so every request changes its row (64 in flight never reach the same
-- user twice with COUNT = 1,000), and the server's admin keeps the flag throughout, so the
-- last-admin rule never refuses.
local first = tonumber(os.getenv("FIRST_ID"))
local count = tonumber(os.getenv("COUNT"))
local n = 0
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"

request = function()
  local user = first + (n % count)
  local grant = (math.floor(n / count) % 2) == 0
  n = n + 1
  local body = grant and '{"isGrafanaAdmin":true}' or '{"isGrafanaAdmin":false}'
  return wrk.format("PUT", "/api/admin/users/" .. user .. "/permissions", nil, body)
end
