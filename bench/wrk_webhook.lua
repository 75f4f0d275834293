-- wrk script: each thread posts its own share of pre-signed webhook bodies, one per request.
-- Arguments after "--": the file of "signature<TAB>body" lines and the number of wrk threads.
local created = 0

function setup(thread)
  thread:set("id", created)
  created = created + 1
end

function init(args)
  local path, total = args[1], tonumber(args[2])
  requests = {}
  local index = 0
  for line in io.lines(path) do
    if index % total == id then
      local tab = line:find("\t", 1, true)
      local headers = {["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = line:sub(1, tab - 1)}
      requests[#requests + 1] = wrk.format("POST", nil, headers, line:sub(tab + 1))
    end
    index = index + 1
  end
  sent = 0
end

function request()
  sent = sent + 1
  return requests[(sent - 1) % #requests + 1]
end
