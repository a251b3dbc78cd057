# Rows for scripts/bench/designated_ns.sh: n rows over 10 days, 8 symbols, timestamps
# with a nanosecond part, as CSV (ts,sym,price).
import sys
import time

n = int(sys.argv[1])
start = 1767225600_000_000_000  # 2026-01-01 in ns
step = 10 * 86400 * 10**9 // n
syms = ["AAPL","MSFT","GOOG","AMZN","META","NVDA","TSLA","NFLX"]
out = sys.stdout
for i in range(n):
    t = start + i * step + (i % 997)
    s, ns = divmod(t, 10**9)
    d = time.gmtime(s)
    out.write(f"{d.tm_year:04d}-{d.tm_mon:02d}-{d.tm_mday:02d}T{d.tm_hour:02d}:{d.tm_min:02d}:{d.tm_sec:02d}.{ns:09d},{syms[i % 8]},{100 + (i % 1000) / 10}\n")
