# Reorders hold lines (TOKEN SHOWTIME SEAT, four consecutive lines per user, as
# `booking-load prepare` writes holds.txt) so that consecutive requests are different users'
# holds of the same showtime: every user's first seat, then every user's second, ... showtime by
# showtime. In a sale, the holds that arrive together are different people's; four holds of one
# user at once would queue on that user's queue entry, which every hold locks (on PostgreSQL).
#   awk -f scripts/wrk/interleave.awk holds.txt > holds1.txt
function flush(   k, i) {
  for (k = 0; k < 4; k++)
    for (i = k; i < n; i += 4) print line[i]
  n = 0
}
$2 != showtime { flush(); showtime = $2 }
{ line[n++] = $0 }
END { flush() }
