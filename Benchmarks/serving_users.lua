-- wrk script: GET recommendations (or similar items) for ids drawn at random from a file, one id per line.
-- Env: IDS_FILE (path), ROUTE ("recommendations", "similar" or "next").
local ids = {}
local route = os.getenv("ROUTE") or "recommendations"
for line in io.lines(os.getenv("IDS_FILE")) do ids[#ids + 1] = line end
math.randomseed(1)
request = function()
  local id = ids[math.random(#ids)]
  if route == "similar" then
    return wrk.format("GET", "/v1/items/" .. id .. "/similar?k=20")
  end
  if route == "next" then
    return wrk.format("GET", "/v1/users/" .. id .. "/next?k=20")
  end
  return wrk.format("GET", "/v1/users/" .. id .. "/recommendations?k=20")
end
