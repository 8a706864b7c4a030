-- wrk script for scripts/bench-portal --rate: paces requests to a fixed
-- total rate instead of sending the next as soon as an answer arrives.
-- wrk (4.x) calls delay() before each request of a connection; every call
-- takes the next free slot of its thread's schedule (one slot every
-- threads/rate seconds), so the thread's connections together send at
-- rate/threads per second. A slot already past is taken at once: when the
-- server falls behind, the rate reached is lower than asked (wrk reports
-- it) and nothing is sent in a burst to catch up.
--   wrk -t2 -c8 -d8s --latency -s scripts/wrk-rate.lua URL -- RATE THREADS
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock_id, bench_timespec *tp);
]]
local ts = ffi.new("bench_timespec")
local function now()
    ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) * 1e-9
end

local interval = nil
local next_at = nil

function init(args)
    local rate = tonumber(args[1])
    local threads = tonumber(args[2]) or 1
    if not rate or rate <= 0 then
        error("wrk-rate.lua: the rate (requests/s) is the first script argument")
    end
    interval = threads / rate
end

function delay()
    local t = now()
    if next_at == nil or next_at < t then
        next_at = t
    end
    local wait = next_at - t
    next_at = next_at + interval
    return math.floor(wait * 1000)
end
