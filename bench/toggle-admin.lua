-- wrk script: durable writes. Each connection alternates the Grafana Admin flag of user
-- USER_ID (PUT /api/admin/users/:id/permissions); the admin stays, so the last-admin rule
-- never refuses. The flag does not alternate globally across connections, so about a fifth
-- of requests find it already set and write nothing (measured on PostgreSQL; the same
-- early return exists on sled). All 64 connections change one row: on PostgreSQL its row
-- lock serialises them, unlike pgbench -N's random rows (bench/README.md).
local id = os.getenv("USER_ID")
local n = 0
wrk.method = "PUT"
wrk.headers["Content-Type"] = "application/json"

request = function()
  n = n + 1
  local body = (n % 2 == 0) and '{"isGrafanaAdmin":true}' or '{"isGrafanaAdmin":false}'
  return wrk.format("PUT", "/api/admin/users/" .. id .. "/permissions", nil, body)
end
