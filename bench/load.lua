-- wrk script for bench/compare.sh: sends the bearer tokens of a traffic shape.
--
--   wrk -t1 -c64 -d3s -s bench/load.lua http://127.0.0.1:38123/ -- PREFIX OFFSET
--
-- PREFIX.tokens holds the distinct tokens, one a line; PREFIX.seq, for each request in
-- turn, the line of its token (both written by `jwt_server tokens`). Requests follow
-- PREFIX.seq from OFFSET (modulo its length) and wrap around at its end.
local requests, seq, i = {}, {}, 0

function init(args)
  for line in io.lines(args[1] .. ".tokens") do
    requests[#requests + 1] = wrk.format("GET", "/", { ["authorization"] = "Bearer " .. line })
  end
  for line in io.lines(args[1] .. ".seq") do
    seq[#seq + 1] = tonumber(line)
  end
  i = tonumber(args[2] or "0") % #seq
end

function request()
  i = i + 1
  if i > #seq then i = 1 end
  return requests[seq[i]]
end
