-- wrk script for the workloads that look like users: every request carries one of the
-- session cookies listed in the file given as the script's first argument, round-robin;
-- READS (the second argument, default 9) reads of the session (`GET /get/foo`) go out for
-- each write (`GET /`, the counter). Each session is written once in READS + 1 visits, at a
-- different turn for each session, so that writes spread over all of them. READS = 0 is
-- the write-every workload. Requests are formatted once, in init.
local reads, writes = {}, {}
local every = 10
local i = 0

function init(args)
  every = tonumber(args[2] or "9") + 1
  for line in io.lines(args[1]) do
    if #line > 0 then
      reads[#reads + 1] = wrk.format("GET", "/get/foo", { ["Cookie"] = line })
      writes[#writes + 1] = wrk.format("GET", "/", { ["Cookie"] = line })
    end
  end
  if #reads == 0 then error("no cookies in " .. args[1]) end
end

function request()
  local n = #reads
  local c = i % n
  local visit = (i - c) / n
  i = i + 1
  if (visit + c) % every == 0 then return writes[c + 1] end
  return reads[c + 1]
end
