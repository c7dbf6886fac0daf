# Reorders hold lines (TOKEN SHOWTIME SEAT) round-robin over their showtimes: one line of each
# showtime in turn, each showtime's lines in their order. Consecutive requests then hold seats of
# different showtimes, as in a sale of many dates at once (scripts/bench-pg.sh).
#   awk -f scripts/wrk/interleave.awk holds.txt | awk -f scripts/wrk/spread.awk > spread.txt
!($2 in index_of) { index_of[$2] = shows++ }
{
  s = index_of[$2]
  line[s, count[s]++] = $0
  if (count[s] > most) most = count[s]
}
END {
  for (j = 0; j < most; j++)
    for (s = 0; s < shows; s++)
      if (j < count[s]) print line[s, j]
}
