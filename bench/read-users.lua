-- wrk script: reads of many different users (GET /api/users/:id over ids 1 to COUNT, in
-- turn), so that a memory figure sees the store's cache hold more than one hot record.
local count = tonumber(os.getenv("COUNT"))
local n = 0

request = function()
  n = n + 1
  return wrk.format("GET", "/api/users/" .. (1 + (n % count)))
end
