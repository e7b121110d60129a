-- wrk script: every request carries one of the session cookies listed in the file given as
-- the script's first argument, round-robin, so the load spreads over many live sessions.
-- The requests are formatted once, in init, so that wrk spends its CPU on sending them
-- rather than on building them (it shares a core with Redis in bench/run.sh).
local requests = {}
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    if #line > 0 then
      requests[#requests + 1] = wrk.format("GET", "/", { ["Cookie"] = line })
    end
  end
  if #requests == 0 then error("no cookies in " .. args[1]) end
end

function request()
  i = i % #requests + 1
  return requests[i]
end
