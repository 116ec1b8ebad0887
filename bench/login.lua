-- wrk script for bench/login_load.sh: correct-password logins spread over USERS
-- accounts (user0@example.com … with the password below), round robin.
--
--   wrk -t1 -c8 -d10s -s bench/login.lua http://127.0.0.1:PORT/auth/login -- USERS
local users, i = 1, 0

function init(args)
  users = tonumber(args[1] or "1")
end

function request()
  i = (i + 1) % users
  local body = string.format(
    '{"email":"user%d@example.com","password":"a long enough load test passphrase"}', i)
  return wrk.format("POST", nil, { ["content-type"] = "application/json" }, body)
end

function response(status)
  if status ~= 200 then
    io.stderr:write("login answered " .. status .. "\n")
  end
end
