-- wrk script: creates COUNT users named <PREFIX>-<n> through the admin API, then idles on
-- /api/health until wrk's duration ends. bench/run.sh reruns it with a new PREFIX until
-- the server holds as many users as wanted, so a request cut off at the end costs nothing.
local prefix = os.getenv("PREFIX")
local count = tonumber(os.getenv("COUNT"))
local n = 0
-- wrk calls request() once per thread while setting up and drops the result.
local primed = false
wrk.headers["Content-Type"] = "application/json"

request = function()
  if not primed then
    primed = true
    return wrk.format("GET", "/api/health")
  end
  if n < count then
    n = n + 1
    local login = prefix .. "-" .. n
    local body = string.format(
      '{"name":"%s","login":"%s","email":"%s@example.com","password":"bulk-password-%d"}',
      login, login, login, n)
    return wrk.format("POST", "/api/admin/users", nil, body)
  end
  return wrk.format("GET", "/api/health")
end
